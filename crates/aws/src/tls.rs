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

/// A DNS resolver that refuses names resolving to an address probes and hooks may never reach
/// (`cutover_core::netguard`): the check happens on the very addresses the connection then uses,
/// so a name that answered a public address at plan check and the metadata address now (DNS
/// rebinding) is refused.
#[derive(Debug, Default, Clone, Copy)]
pub struct GuardedResolver;

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_string();
        Box::pin(async move {
            let addrs: Vec<std::net::SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if let Some((a, why)) = addrs
                .iter()
                .find_map(|a| cutover_core::netguard::forbidden_ip(a.ip()).map(|why| (a.ip(), why)))
            {
                return Err(format!(
                    "'{host}' resolves to {a}, which is {why}: probes and hooks may not reach the function's own machine or platform"
                )
                .into());
            }
            let it: reqwest::dns::Addrs = Box::new(addrs.into_iter());
            Ok(it)
        })
    }
}
