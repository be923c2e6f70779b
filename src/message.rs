//! What the layer reads of a request and a response, for every client stack.
//!
//! The layer serves any `tower::Service` whose requests and responses expose a
//! method, a path, a host and headers: `http::Request<B>` / `http::Response<B>`
//! (hyper-util, tower-http stacks) and, behind the `reqwest` feature,
//! `reqwest::Request` / `reqwest::Response`.

use http::{HeaderMap, Method, StatusCode};

/// A request the layer can charge.
pub trait HttpRequest {
    /// The request method.
    fn method(&self) -> &Method;
    /// The path, without the query string.
    fn path(&self) -> &str;
    /// The host, if the request names one.
    fn host(&self) -> Option<&str>;
    /// The request headers.
    fn headers(&self) -> &HeaderMap;
}

/// A response the layer learns from.
pub trait HttpResponse {
    /// The status code.
    fn status(&self) -> StatusCode;
    /// The response headers.
    fn headers(&self) -> &HeaderMap;
}

impl<B> HttpRequest for http::Request<B> {
    fn method(&self) -> &Method {
        self.method()
    }
    fn path(&self) -> &str {
        self.uri().path()
    }
    fn host(&self) -> Option<&str> {
        self.uri().host().or_else(|| {
            self.headers()
                .get(http::header::HOST)
                .and_then(|h| h.to_str().ok())
                .map(|h| h.split(':').next().unwrap_or(h))
        })
    }
    fn headers(&self) -> &HeaderMap {
        self.headers()
    }
}

impl<B> HttpResponse for http::Response<B> {
    fn status(&self) -> StatusCode {
        self.status()
    }
    fn headers(&self) -> &HeaderMap {
        self.headers()
    }
}

#[cfg(feature = "reqwest")]
impl HttpRequest for reqwest::Request {
    fn method(&self) -> &Method {
        self.method()
    }
    fn path(&self) -> &str {
        self.url().path()
    }
    fn host(&self) -> Option<&str> {
        self.url().host_str()
    }
    fn headers(&self) -> &HeaderMap {
        self.headers()
    }
}

#[cfg(feature = "reqwest")]
impl HttpResponse for reqwest::Response {
    fn status(&self) -> StatusCode {
        self.status()
    }
    fn headers(&self) -> &HeaderMap {
        self.headers()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_path_and_host_from_http_requests() {
        let r = http::Request::get("http://api.example.com:8080/v1/campaigns/7?x=1")
            .body(())
            .unwrap_or_default();
        assert_eq!(HttpRequest::path(&r), "/v1/campaigns/7");
        assert_eq!(HttpRequest::host(&r), Some("api.example.com"));
        let r = http::Request::get("/v1/users")
            .header("host", "127.0.0.1:3000")
            .body(())
            .unwrap_or_default();
        assert_eq!(HttpRequest::host(&r), Some("127.0.0.1"));
    }
}
