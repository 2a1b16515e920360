//! Credentials never leave through what the suite writes: a URL's password and the values of
//! query parameters that carry secrets are replaced before a URL reaches an audit event, a health
//! reason, an error cause or a log line.

/// Query parameter names (compared without case) whose values are credentials: passwords, API
/// keys, tokens, SigV4 presigned-URL parameters (X-Amz-Signature, X-Amz-Credential,
/// X-Amz-Security-Token).
const SECRET_PARAMS: &[&str] = &[
    "password",
    "passwd",
    "pwd",
    "secret",
    "token",
    "key",
    "apikey",
    "signature",
    "credential",
    "auth",
    "sig",
    "code",
    "session",
    "pass",
    "jwt",
    "bearer",
    "assertion",
];

const REDACTED: &str = "REDACTED";

fn secret_param(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    SECRET_PARAMS.iter().any(|s| n.contains(s))
}

/// One URL with its password and secret query values replaced; text that is not a URL unchanged.
pub fn redact_url(text: &str) -> String {
    let Ok(mut u) = url::Url::parse(text) else {
        return text.to_string();
    };
    if u.password().is_some() {
        let _ = u.set_password(Some(REDACTED));
    } else if !u.username().is_empty() {
        // A user part alone is often the credential itself (a token as the user name).
        let _ = u.set_username(REDACTED);
    }
    // A fragment carries credentials in the OAuth implicit flow (`#access_token=…`).
    if let Some(f) = u.fragment().filter(|f| f.contains('=')).map(str::to_string) {
        let pairs: Vec<String> = url::form_urlencoded::parse(f.as_bytes())
            .map(|(k, v)| {
                let v = if secret_param(&k) {
                    REDACTED.into()
                } else {
                    v.into_owned()
                };
                format!("{k}={v}")
            })
            .collect();
        u.set_fragment(Some(&pairs.join("&")));
    }
    if u.query().is_some() {
        let pairs: Vec<(String, String)> = u
            .query_pairs()
            .map(|(k, v)| {
                let v = if secret_param(&k) {
                    REDACTED.to_string()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        u.query_pairs_mut().clear().extend_pairs(pairs);
    }
    u.to_string()
}

/// What credential a URL carries in itself, if any: a user part, a password, or a query or
/// fragment parameter whose name says it holds a secret (the names `redact_url` replaces). A plan
/// may not carry one: credentials come from Secrets Manager or Parameter Store references.
pub fn url_credential(u: &url::Url) -> Option<String> {
    if u.password().is_some() {
        return Some("a password".into());
    }
    if !u.username().is_empty() {
        return Some("a user part".into());
    }
    let in_query = u.query_pairs().map(|(k, _)| k.into_owned());
    let in_fragment = u
        .fragment()
        .filter(|f| f.contains('='))
        .map(|f| {
            url::form_urlencoded::parse(f.as_bytes())
                .map(|(k, _)| k.into_owned())
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    in_query
        .chain(in_fragment)
        .find(|k| secret_param(k))
        .map(|k| format!("the parameter '{k}'"))
}

/// Free text with every http(s) URL in it redacted.
pub fn redact_text(text: &str) -> String {
    if !text.contains("://") {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("http") {
        let candidate = &rest[i..];
        if !(candidate.starts_with("https://") || candidate.starts_with("http://")) {
            out.push_str(&rest[..i + 4]);
            rest = &rest[i + 4..];
            continue;
        }
        out.push_str(&rest[..i]);
        let end = candidate
            .find(|c: char| c.is_whitespace() || matches!(c, ')' | '"' | '\'' | '>' | ']' | ','))
            .unwrap_or(candidate.len());
        out.push_str(&redact_url(&candidate[..end]));
        rest = &candidate[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_a_url_carries_are_named() {
        let named = |s: &str| url_credential(&url::Url::parse(s).unwrap());
        assert_eq!(
            named("https://u:p@h.example.com/").as_deref(),
            Some("a password")
        );
        assert_eq!(
            named("https://tok@h.example.com/").as_deref(),
            Some("a user part")
        );
        assert_eq!(
            named("https://h.example.com/?region=eu&Pass=x").as_deref(),
            Some("the parameter 'Pass'")
        );
        assert_eq!(
            named("https://h.example.com/#access_token=x").as_deref(),
            Some("the parameter 'access_token'")
        );
        assert_eq!(named("https://h.example.com/health?region=eu#top"), None);
    }

    #[test]
    fn passwords_and_secret_parameters_are_replaced() {
        assert_eq!(
            redact_url("https://probe:hunter2@green.example.com/health?api_key=abc&region=eu"),
            "https://probe:REDACTED@green.example.com/health?api_key=REDACTED&region=eu"
        );
        assert_eq!(
            redact_text("https://user:pw@x.example.com/h: connection failed (https://x.example.com/?X-Amz-Signature=f00&X-Amz-Credential=AKID)"),
            "https://user:REDACTED@x.example.com/h: connection failed (https://x.example.com/?X-Amz-Signature=REDACTED&X-Amz-Credential=REDACTED)"
        );
        assert_eq!(
            redact_text("lag 3s; http 503 from https://green.example.com/health"),
            "lag 3s; http 503 from https://green.example.com/health"
        );
        assert_eq!(
            redact_text("no urls, httpd is fine"),
            "no urls, httpd is fine"
        );
    }

    #[test]
    fn user_only_credentials_pass_jwt_and_fragment_tokens_are_replaced() {
        for (given, secret) in [
            ("https://ghp_abc123@green.example.com/health", "ghp_abc123"),
            ("https://green.example.com/health?pass=hunter2", "hunter2"),
            (
                "https://green.example.com/health?jwt=eyJhbGciOi.x.y",
                "eyJhbGciOi",
            ),
            (
                "https://green.example.com/cb#access_token=tok123&state=s",
                "tok123",
            ),
            ("https://green.example.com/health?Access_Token=t0k", "t0k"),
        ] {
            let r = redact_url(given);
            assert!(!r.contains(secret), "{given} -> {r}");
            assert!(r.contains(REDACTED), "{r}");
            let t = redact_text(&format!("probe {given} failed"));
            assert!(!t.contains(secret), "{t}");
        }
        assert_eq!(
            redact_url("https://green.example.com/docs#section-2"),
            "https://green.example.com/docs#section-2"
        );
    }
}
