//! Where a recorder sends the calls it records: a Bedrock endpoint over HTTP(S),
//! signed with SigV4 when credentials are given, or a router called in process (a
//! mock Bedrock under the simulator's paused clock, where timings are exact).

use axum::Router;
use axum::body::Body;
use bytes::Bytes;
use http::{HeaderValue, Request, Response, Uri};
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::SystemTime;
use tower::ServiceExt;

/// Why an upstream call failed before any response.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UpstreamError {
    /// The upstream URL is not an absolute `http(s)://` URL.
    #[error("upstream URL {0:?} is not an absolute http(s) URL")]
    BadUrl(String),
    /// The system's root certificates could not be read.
    #[error("cannot load the system's root certificates: {0}")]
    Roots(std::io::Error),
    /// The request could not be signed.
    #[error("cannot sign the request: {0}")]
    Sign(String),
    /// The connection or the exchange failed.
    #[error("upstream call failed: {0}")]
    Call(String),
}

/// A call in flight to the upstream.
pub type UpstreamFuture =
    Pin<Box<dyn Future<Output = Result<Response<Body>, UpstreamError>> + Send + 'static>>;

/// Something that answers Bedrock calls: the request as the caller sent it (path and
/// query as received; credentials headers already removed).
pub trait Upstream: Send + Sync + fmt::Debug + 'static {
    /// Sends one call; the response body streams as the upstream sends it.
    fn call(&self, request: Request<Bytes>) -> UpstreamFuture;
}

/// A router called in process, e.g. `mock_bedrock::app(state)`.
#[derive(Debug, Clone)]
pub struct RouterUpstream(pub Router);

impl Upstream for RouterUpstream {
    fn call(&self, request: Request<Bytes>) -> UpstreamFuture {
        let router = self.0.clone();
        Box::pin(async move {
            let response = router.oneshot(request.map(Body::from)).await;
            Ok(response.unwrap_or_else(|never| match never {}))
        })
    }
}

/// AWS credentials to sign upstream calls with (never written anywhere).
#[derive(Clone)]
pub struct SigningKeys {
    /// The access key id.
    pub access_key_id: String,
    /// The secret access key.
    pub secret_access_key: String,
    /// The session token of temporary credentials.
    pub session_token: Option<String>,
    /// The region signed for.
    pub region: String,
}

impl fmt::Debug for SigningKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKeys")
            .field("access_key_id", &"<redacted>")
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

impl SigningKeys {
    /// Keys from `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN` and
    /// `AWS_REGION` (or `AWS_DEFAULT_REGION`, else `us-east-1`); `None` without a key pair.
    pub fn from_env() -> Option<SigningKeys> {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        Some(SigningKeys {
            access_key_id: var("AWS_ACCESS_KEY_ID")?,
            secret_access_key: var("AWS_SECRET_ACCESS_KEY")?,
            session_token: var("AWS_SESSION_TOKEN"),
            region: var("AWS_REGION")
                .or_else(|| var("AWS_DEFAULT_REGION"))
                .unwrap_or_else(|| "us-east-1".into()),
        })
    }
}

type HttpsClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

/// A Bedrock endpoint over HTTP(S): real Bedrock
/// (`https://bedrock-runtime.us-east-1.amazonaws.com`) with [`SigningKeys`], or any
/// Bedrock-compatible endpoint, unsigned without them.
#[derive(Debug, Clone)]
pub struct HttpUpstream {
    scheme: http::uri::Scheme,
    authority: http::uri::Authority,
    client: HttpsClient,
    keys: Option<SigningKeys>,
}

impl HttpUpstream {
    /// An upstream at `url` (scheme and host; any path is ignored).
    ///
    /// # Errors
    ///
    /// [`UpstreamError::BadUrl`] for a URL without scheme and host,
    /// [`UpstreamError::Roots`] when the system's certificates cannot be read.
    pub fn new(url: &str, keys: Option<SigningKeys>) -> Result<HttpUpstream, UpstreamError> {
        let uri: Uri = url
            .parse()
            .map_err(|_| UpstreamError::BadUrl(url.to_owned()))?;
        let (Some(scheme), Some(authority)) = (uri.scheme().cloned(), uri.authority().cloned())
        else {
            return Err(UpstreamError::BadUrl(url.to_owned()));
        };
        if scheme != http::uri::Scheme::HTTP && scheme != http::uri::Scheme::HTTPS {
            return Err(UpstreamError::BadUrl(url.to_owned()));
        }
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_native_roots(rustls::crypto::ring::default_provider())
            .map_err(UpstreamError::Roots)?
            .https_or_http()
            .enable_http1()
            .build();
        let client = Client::builder(TokioExecutor::new()).build(https);
        Ok(HttpUpstream {
            scheme,
            authority,
            client,
            keys,
        })
    }

    fn prepare(&self, request: Request<Bytes>) -> Result<Request<Full<Bytes>>, UpstreamError> {
        let (mut parts, body) = request.into_parts();
        let path = parts
            .uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_owned();
        parts.uri = Uri::builder()
            .scheme(self.scheme.clone())
            .authority(self.authority.clone())
            .path_and_query(path)
            .build()
            .map_err(|e| UpstreamError::BadUrl(e.to_string()))?;
        let host = HeaderValue::from_str(self.authority.as_str())
            .map_err(|e| UpstreamError::BadUrl(e.to_string()))?;
        parts.headers.insert(http::header::HOST, host);
        let mut request = Request::from_parts(parts, body);
        if let Some(keys) = &self.keys {
            sign(&mut request, keys)?;
        }
        Ok(request.map(Full::new))
    }
}

impl Upstream for HttpUpstream {
    fn call(&self, request: Request<Bytes>) -> UpstreamFuture {
        let prepared = self.prepare(request);
        let client = self.client.clone();
        Box::pin(async move {
            let response = client
                .request(prepared?)
                .await
                .map_err(|e| UpstreamError::Call(e.to_string()))?;
            Ok(response.map(Body::new))
        })
    }
}

/// Signs `request` with SigV4 for the `bedrock` service.
fn sign(request: &mut Request<Bytes>, keys: &SigningKeys) -> Result<(), UpstreamError> {
    use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
    use aws_sigv4::sign::v4;
    let fail = |e: &dyn fmt::Display| UpstreamError::Sign(e.to_string());
    let identity = aws_credential_types::Credentials::new(
        &keys.access_key_id,
        &keys.secret_access_key,
        keys.session_token.clone(),
        None,
        "record-from",
    )
    .into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(&keys.region)
        .name("bedrock")
        .time(SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| fail(&e))?
        .into();
    let headers: Vec<(&str, &str)> = request
        .headers()
        .iter()
        .filter_map(|(k, v)| Some((k.as_str(), v.to_str().ok()?)))
        .collect();
    let uri = request.uri().to_string();
    let signable = SignableRequest::new(
        request.method().as_str(),
        &uri,
        headers.into_iter(),
        SignableBody::Bytes(request.body()),
    )
    .map_err(|e| fail(&e))?;
    let (instructions, _signature) = sign(signable, &params).map_err(|e| fail(&e))?.into_parts();
    instructions.apply_to_request_http1x(request);
    Ok(())
}
