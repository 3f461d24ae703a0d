//! Properties of the forwarding rules (core::forward): whatever fields a
//! request or response carries, what the other side is sent parses again
//! with the same status, method and body framing, and carries no
//! hop-by-hop, `Connection`-named or proxy-only field.

use proptest::prelude::*;
use smokescreen::core::forward::{self, BodyPlan, ForwardError, Interim};
use smokescreen::core::head::{
    parse_request, parse_response, BodyFraming, HeadLimits, Headers, RequestForm,
};

/// Field names never passed on (besides those a `Connection` field names).
const NEVER: &[&str] = &[
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "upgrade",
    "x-smokescreen-trace-id",
    "x-smokescreen-role",
];

/// `name` with one of `values`.
fn valued(name: &'static str, values: &[&'static str]) -> BoxedStrategy<(String, String)> {
    prop::sample::select(values.to_vec())
        .prop_map(move |v| (name.to_string(), v.to_string()))
        .boxed()
}

/// Field names sent with a plain value.
const PLAIN: &[&str] = &[
    "Keep-Alive",
    "X-Hop",
    "X-Smokescreen-Error",
    "X-Smokescreen-Trace-Id",
    "X-Smokescreen-Role",
    "Proxy-Authenticate",
    "Proxy-Authorization",
    "Proxy-Connection",
    "Upgrade",
    "TE",
    "Trailer",
    "ETag",
    "Expect",
    "Link",
];

fn field() -> impl Strategy<Value = (String, String)> {
    prop_oneof![
        valued(
            "Connection",
            &["close", "X-Hop", "keep-alive, X-Hop", "Upgrade"]
        ),
        valued("Content-Length", &["0", "5", "5, 5", "1, 2", "x", "007"]),
        valued(
            "Transfer-Encoding",
            &[
                "chunked",
                "gzip, chunked",
                "chunked, gzip",
                "gzip",
                "Chunked"
            ],
        ),
        prop::sample::select(PLAIN.to_vec()).prop_map(|n| (n.to_string(), "v".to_string())),
    ]
}

fn fields_text(fields: &[(String, String)]) -> String {
    fields
        .iter()
        .map(|(n, v)| format!("{n}: {v}\r\n"))
        .collect()
}

/// Names that must not appear in what was sent on. Towards the client no
/// `X-Smokescreen-*` field at all: only the proxy's own answers carry them.
fn forbidden(original: &Headers, name: &str, to_client: bool) -> bool {
    let lower = name.to_ascii_lowercase();
    NEVER.contains(&lower.as_str())
        || (to_client && lower.starts_with("x-smokescreen-"))
        || (lower != "connection"
            && original.connection_tokens().contains(&lower)
            && lower != "close"
            && lower != "keep-alive")
}

fn check_fields(original: &Headers, sent: &Headers, to_client: bool) -> Result<(), TestCaseError> {
    for (name, value) in &sent.0 {
        prop_assert!(
            !forbidden(original, name, to_client),
            "{name} was passed on"
        );
        if name.eq_ignore_ascii_case("connection") {
            prop_assert!(value == b"close" || value == b"keep-alive");
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn forwarded_requests_parse_with_the_same_method_and_framing(
        method in prop::sample::select(vec!["GET", "HEAD", "head", "POST", "PATCH"]),
        http10 in any::<bool>(),
        fields in prop::collection::vec(field(), 0..5),
    ) {
        let version = if http10 { "HTTP/1.0" } else { "HTTP/1.1" };
        let text = format!("{method} http://o.test/p {version}\r\n{}\r\n", fields_text(&fields));
        let limits = HeadLimits::default();
        let Ok(Some(req)) = parse_request(text.as_bytes(), &limits) else {
            return Ok(());
        };
        let sent = forward::request_head(&req, None);
        let again = parse_request(&sent, &limits);
        prop_assert!(matches!(again, Ok(Some(_))), "{:?}", String::from_utf8_lossy(&sent));
        let Ok(Some(again)) = again else { unreachable!() };
        prop_assert_eq!(&again.method, &req.method);
        prop_assert_eq!(again.body, req.body);
        prop_assert_eq!(again.form, RequestForm::Origin("/p".into()));
        check_fields(&req.headers, &again.headers, false)?;
    }

    #[test]
    fn relayed_responses_parse_with_the_same_status_and_the_planned_framing(
        method in prop::sample::select(vec!["GET", "HEAD", "head"]),
        client10 in any::<bool>(),
        client_close in any::<bool>(),
        status in prop::sample::select(vec![100u16, 101, 103, 200, 204, 304, 404]),
        origin10 in any::<bool>(),
        fields in prop::collection::vec(field(), 0..5),
        upload_done in any::<bool>(),
    ) {
        let client_version = if client10 { "HTTP/1.0" } else { "HTTP/1.1" };
        let close = if client_close { "Connection: close\r\n" } else { "" };
        let req_text = format!("{method} http://o.test/ {client_version}\r\n{close}\r\n");
        let limits = HeadLimits::default();
        let req = parse_request(req_text.as_bytes(), &limits).unwrap().unwrap();
        let origin_version = if origin10 { "HTTP/1.0" } else { "HTTP/1.1" };
        let text = format!("{origin_version} {status} X\r\n{}\r\n", fields_text(&fields));
        let is_head = forward::is_head(&req);
        let Ok(Some(resp)) = parse_response(text.as_bytes(), &limits, is_head) else {
            return Ok(());
        };
        if (100..200).contains(&status) {
            match forward::interim(&req, &resp) {
                Err(e) => prop_assert_eq!((status, e), (101, ForwardError::SwitchedProtocols)),
                Ok(Interim::Drop) => prop_assert!(client10),
                Ok(Interim::Relay(bytes)) => {
                    let again = parse_response(&bytes, &limits, is_head).unwrap().unwrap();
                    prop_assert_eq!(again.status, status);
                    prop_assert_eq!(again.head_len, bytes.len());
                    check_fields(&resp.headers, &again.headers, true)?;
                }
            }
            return Ok(());
        }
        let plan = match forward::response_head(&req, &resp, upload_done) {
            Ok(plan) => plan,
            Err(e) => {
                prop_assert!(client10, "{e}");
                prop_assert!(matches!(e, ForwardError::CodingForHttp10(_)));
                return Ok(());
            }
        };
        let again = parse_response(&plan.head, &limits, is_head);
        prop_assert!(matches!(again, Ok(Some(_))), "{:?}", String::from_utf8_lossy(&plan.head));
        let Ok(Some(again)) = again else { unreachable!() };
        prop_assert_eq!(again.status, status);
        prop_assert_eq!(again.head_len, plan.head.len());
        check_fields(&resp.headers, &again.headers, true)?;
        let framing = match plan.body {
            BodyPlan::None => BodyFraming::Empty,
            BodyPlan::Length(n) => BodyFraming::Length(n),
            BodyPlan::Rechunk => BodyFraming::Chunked,
            BodyPlan::Dechunk | BodyPlan::UntilClose => BodyFraming::UntilClose,
        };
        prop_assert_eq!(again.body, framing);
        if plan.client_keep_alive {
            prop_assert!(upload_done && !client_close);
        }
    }
}
