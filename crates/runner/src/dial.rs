//! Connection errors in words an operator can act on. The usual mistake is a mismatch of TLS
//! between the runner's URL and the server's port: a plaintext runner talking to a TLS port (or
//! the reverse) gets only a broken handshake from the transport, so say what it probably means.

use std::error::Error;

/// `err` and its causes, with a hint when they look like a TLS mismatch or an untrusted
/// certificate.
pub fn explain(url: &str, err: &(dyn Error + 'static)) -> String {
    let text = chain(err.to_string(), err.source());
    format!("{text}{}", hint(url, &text))
}

/// Like [`explain`] for an RPC that failed.
pub fn explain_status(url: &str, status: &tonic::Status) -> String {
    let text = chain(status.message().to_owned(), status.source());
    format!("{text}{}", hint(url, &text))
}

/// `text` followed by the causes it does not already say.
fn chain(mut text: String, mut cause: Option<&(dyn Error + 'static)>) -> String {
    while let Some(c) = cause {
        let s = c.to_string();
        if !text.ends_with(&s) {
            text.push_str(": ");
            text.push_str(&s);
        }
        cause = c.source();
    }
    text
}

fn hint(url: &str, text: &str) -> &'static str {
    let t = text.to_ascii_lowercase();
    let broken = [
        "connection reset",
        "broken pipe",
        "frame",
        "protocol error",
        "connection closed",
        "unexpected eof",
        "invalid",
        "corrupt",
        "handshake",
        // A TLS port answers an HTTP/2 preface with an alert and closes before the client's
        // connection becomes ready; depending on timing that surfaces as one of these.
        "connection was not ready",
        "operation was canceled",
    ]
    .iter()
    .any(|m| t.contains(m));
    if t.contains("certificate") || t.contains("unknownissuer") || t.contains("not valid for name") {
        "; the server's certificate is not trusted for this name: give the CA that signed it (--ca-file), and a URL whose host name the certificate carries"
    } else if url.starts_with("http://") && broken {
        "; if the server's port uses TLS, use an https:// URL (with --ca-file when its certificate is not from a public CA)"
    } else if url.starts_with("https://") && broken {
        "; if the server's port does not use TLS, use an http:// URL"
    } else {
        ""
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tls_mismatch_gets_a_hint() {
        let plain = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "connection reset by peer");
        assert!(explain("http://b:7000", &plain).contains("use an https:// URL"));
        let tls = std::io::Error::other("received corrupt message of type InvalidContentType");
        assert!(explain("https://b:7000", &tls).contains("use an http:// URL"));
        let untrusted = std::io::Error::other("invalid peer certificate: UnknownIssuer");
        assert!(explain("https://b:7000", &untrusted).contains("--ca-file"));
        let early = std::io::Error::other("operation was canceled: connection was not ready");
        assert!(explain("http://b:7000", &early).contains("use an https:// URL"));
        let refused = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connection refused");
        assert_eq!(explain("http://b:7000", &refused), "connection refused");
    }
}
