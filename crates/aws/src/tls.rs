//! The one TLS stack of every outgoing call: rustls over ring, for the SDK's clients and for the
//! HTTP probes and hooks (reqwest). The SDK's default HTTPS client would link aws-lc-rs beside it.

use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
use aws_smithy_runtime_api::client::http::SharedHttpClient;

/// The SDK's HTTPS client over rustls and ring. Its trust store (the system's certificates) is
/// loaded when a client first connects, not here.
pub fn https_client() -> SharedHttpClient {
    aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https()
}

/// `aws_config::defaults` with the HTTPS client above: every SDK configuration starts here.
pub fn sdk_loader() -> aws_config::ConfigLoader {
    aws_config::defaults(aws_config::BehaviorVersion::latest()).http_client(https_client())
}

/// A reqwest client builder on the same stack (ring as the process's rustls provider, which
/// reqwest's clients use), following no redirects, naming itself `user_agent`.
pub fn reqwest_builder(user_agent: &str) -> reqwest::ClientBuilder {
    // A second call finds a provider already installed (ring, by this function): nothing to do.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(user_agent)
}
