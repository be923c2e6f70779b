//! A small HTTP/1.1 client for talking to a [`TestServer`](crate::testkit::TestServer)
//! over real loopback connections.

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// What a request can fail with: a bad URL or header, or a transport error.
pub type ClientError = Box<dyn std::error::Error + Send + Sync>;

/// A response, read to the end.
#[derive(Clone, Debug)]
pub struct TestResponse {
    /// The status.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The body.
    pub body: Bytes,
}

impl TestResponse {
    /// A header's value as text (`None` if absent or not visible ASCII).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body as UTF-8 text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A pooled keep-alive client bound to one base URL. Clones share the pool.
#[derive(Clone, Debug)]
pub struct TestClient {
    base: String,
    inner: Client<HttpConnector, Full<Bytes>>,
}

impl TestClient {
    /// A client for `base_url` (`http://127.0.0.1:<port>`).
    pub fn new(base_url: impl Into<String>) -> TestClient {
        TestClient {
            base: base_url.into(),
            inner: Client::builder(TokioExecutor::new()).build_http(),
        }
    }

    /// `GET path` with `headers`.
    ///
    /// # Errors
    ///
    /// See [`TestClient::send`].
    pub async fn get(
        &self,
        path: &str,
        headers: &[(&str, &str)],
    ) -> Result<TestResponse, ClientError> {
        self.send(Method::GET, path, headers, Bytes::new()).await
    }

    /// `POST path` with `headers` and a JSON `body`.
    ///
    /// # Errors
    ///
    /// See [`TestClient::send`].
    pub async fn post(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Result<TestResponse, ClientError> {
        let mut all = vec![("content-type", "application/json")];
        all.extend_from_slice(headers);
        self.send(
            Method::POST,
            path,
            &all,
            Bytes::copy_from_slice(body.as_bytes()),
        )
        .await
    }

    /// Sends a request and reads the whole response.
    ///
    /// # Errors
    ///
    /// An invalid path or header, a connection failure or a broken body.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> Result<TestResponse, ClientError> {
        let mut req = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        let resp = self.inner.request(req.body(Full::new(body))?).await?;
        let (parts, body) = resp.into_parts();
        let body = body.collect().await?.to_bytes();
        Ok(TestResponse {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    }
}
