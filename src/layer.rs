//! The tower [`Layer`]: wraps any HTTP client service in the limiter.

use std::sync::Arc;

use tower_layer::Layer;

use crate::clock::TokioClock;
use crate::limiter::Limiter;
use crate::service::QuotaService;

/// Applies a shared [`Limiter`] to a client stack.
///
/// Clones share the limiter, so one allowance can serve many stacks.
///
/// ```
/// use tower::ServiceBuilder;
/// use tower_quota::{Limiter, OtherRoutes, QuotaLayer};
/// use tower_quota::quota::Quota;
/// use tower_quota::route::Templates;
///
/// let limiter = Limiter::builder()
///     .routes(Templates::seed004(), |_| None, OtherRoutes::Shared(Quota::per_minute(60).into()))
///     .build();
/// let svc = ServiceBuilder::new()
///     .layer(QuotaLayer::new(limiter))
///     .service(tower::service_fn(|_req: http::Request<()>| async {
///         Ok::<_, std::convert::Infallible>(http::Response::new(()))
///     }));
/// # drop(svc);
/// ```
#[derive(Debug)]
pub struct QuotaLayer<C = TokioClock> {
    limiter: Arc<Limiter<C>>,
}

impl<C> QuotaLayer<C> {
    /// A layer drawing on `limiter`.
    pub fn new(limiter: Arc<Limiter<C>>) -> Self {
        QuotaLayer { limiter }
    }

    /// The shared limiter.
    pub fn limiter(&self) -> &Arc<Limiter<C>> {
        &self.limiter
    }
}

impl<C> Clone for QuotaLayer<C> {
    fn clone(&self) -> Self {
        QuotaLayer {
            limiter: self.limiter.clone(),
        }
    }
}

impl<S, C> Layer<S> for QuotaLayer<C> {
    type Service = QuotaService<S, C>;

    fn layer(&self, inner: S) -> Self::Service {
        QuotaService::new(inner, self.limiter.clone())
    }
}
