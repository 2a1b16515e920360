//! Where probes and hooks may never go: the addresses that reach the machine the function runs
//! on or its platform instead of the application. A Lambda function can reach its own Runtime
//! API on 127.0.0.1:9001 (https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html), the
//! instance metadata service at 169.254.169.254 and fd00:ec2::254
//! (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/instancedata-data-retrieval.html), the
//! ECS credentials endpoint at 169.254.170.2, and whatever listens on loopback; a plan that names
//! them would make the stack a confused deputy. Private addresses (10/8, 172.16/12, 192.168/16)
//! stay allowed: green is often private (docs/deploy.md, "Private green endpoints").

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why an address may not be probed or called; None when it may.
pub fn forbidden_ip(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return forbidden_v4(v4);
            }
            if v6.is_loopback() {
                Some("loopback")
            } else if v6.is_unspecified() {
                Some("unspecified")
            } else if v6 == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254) {
                Some("the instance metadata service")
            } else if (v6.segments()[0] & 0xffc0) == 0xfe80 {
                Some("link-local")
            } else {
                None
            }
        }
    }
}

fn forbidden_v4(v4: Ipv4Addr) -> Option<&'static str> {
    if v4 == Ipv4Addr::new(169, 254, 169, 254) {
        Some("the instance metadata service")
    } else if v4 == Ipv4Addr::new(169, 254, 170, 2) {
        Some("the container credentials endpoint")
    } else if v4.is_loopback() {
        Some("loopback (the Lambda Runtime API listens there)")
    } else if v4.is_link_local() {
        Some("link-local")
    } else if v4.octets()[0] == 0 {
        Some("unspecified")
    } else if v4.is_broadcast() {
        Some("broadcast")
    } else {
        None
    }
}

/// Host names that always mean this machine or its metadata service.
fn forbidden_name(host: &str) -> Option<&'static str> {
    let h = host.trim_end_matches('.').to_ascii_lowercase();
    if h == "localhost" || h.ends_with(".localhost") {
        Some("loopback")
    } else if h == "instance-data" || h == "instance-data.ec2.internal" {
        Some("the instance metadata service")
    } else {
        None
    }
}

/// Why a URL's host may not be probed or called (an address literal, or a name that always
/// means this machine); None when it may. Names that resolve elsewhere are checked again when
/// they are resolved, at probe time.
pub fn forbidden_url(url: &url::Url) -> Option<String> {
    let reason = match url.host()? {
        url::Host::Ipv4(v4) => forbidden_ip(IpAddr::V4(v4)),
        url::Host::Ipv6(v6) => forbidden_ip(IpAddr::V6(v6)),
        url::Host::Domain(d) => forbidden_name(d),
    }?;
    Some(format!(
        "'{}' is {reason}: probes and hooks may not reach the function's own machine or platform",
        url.host_str().unwrap_or_default()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url_reason(u: &str) -> Option<String> {
        forbidden_url(&url::Url::parse(u).unwrap())
    }

    #[test]
    fn the_platform_and_loopback_are_refused_private_networks_are_not() {
        for u in [
            "http://169.254.169.254/latest/meta-data/",
            "http://169.254.170.2/v2/credentials",
            "http://[fd00:ec2::254]/latest/api/token",
            "http://127.0.0.1:9001/2018-06-01/runtime/invocation/next",
            "http://localhost/health",
            "http://api.localhost/health",
            "http://0.0.0.0/",
            "http://[::1]/",
            "http://[::]/",
            "http://[::ffff:127.0.0.1]/",
            "http://[fe80::1]/",
            "http://169.254.1.1/",
            "http://2130706433/",
            "http://0x7f.1/",
            "http://instance-data/latest/",
        ] {
            assert!(url_reason(u).is_some(), "{u} must be refused");
        }
        for u in [
            "https://green.example.com/health",
            "http://10.0.1.20/health",
            "http://192.168.1.5:8080/",
            "http://172.20.0.4/",
            "http://[2001:db8::1]/",
        ] {
            assert_eq!(url_reason(u), None, "{u} must be allowed");
        }
    }
}
