//! The two log lines and the deny body on the Fly.io example page, reproduced
//! byte for byte from the same inputs through the real decision pipeline
//! (except `bytes_in`/`bytes_out`, which Smokescreen printed as pointers).

use std::net::{IpAddr, SocketAddr};

use base64::Engine as _;
use smokescreen::core::acl::Acl;
use smokescreen::core::addr::{AddressPolicy, SelfEndpoints};
use smokescreen::core::auth::{AuthMode, Password};
use smokescreen::core::decision::{self, Policy, RequestFacts};
use smokescreen::core::head::{parse_request, HeadLimits, RequestForm};
use smokescreen::core::record::{Client, CloseRecord, ProxyType};
use smokescreen::core::time::Timestamp;
use smokescreen::core::DEFAULT_ACL_YAML;

const FLY_DECISION: &str = r#"time="2021-01-13T11:35:13Z" level=info msg=CANONICAL-PROXY-DECISION allow=true content_length=0 decision_reason="rule has allow and report policy" dst_ip="2a09:8280:1:a270:b8f5:b9f7:8891:f3" dst_port=443 enforce_would_deny=true id=bvvdlsd11c3s4uipn73g project=users proxy_type=connect requested_host="fly.io:443" role=authed source_addr="[fdaa:0:4:a7b:dc6:0:a:2]:53137" src_host="fdaa:0:4:a7b:dc6:0:a:2" src_host_common_name=unknown src_host_organization_unit=unknown src_port=53137 start_time="2021-01-13 11:35:13.865538649 +0000 UTC" trace_id="#;
const FLY_CLOSE: &str = r#"time="2021-01-13T11:35:14Z" level=info msg=CANONICAL-PROXY-CN-CLOSE bytes_in=0xc000137310 bytes_out=0xc000137318 dst_ip="2a09:8280:1:a270:b8f5:b9f7:8891:f3" dst_port=443 duration=0.170710048 end_time="2021-01-13 11:35:14.062381945 +0000 UTC" error= id=bvvdlsd11c3s4uipn73g last_activity="2021-01-13 11:35:14.062118835 +0000 UTC" proxy_type=connect requested_host="fly.io:443" role=authed source_addr="[fdaa:0:4:a7b:dc6:0:a:2]:53137" start_time="2021-01-13 11:35:13.865538649 +0000 UTC" trace_id="#;

fn settings() -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    s.set_snapshot_path(concat!(env!("CARGO_MANIFEST_DIR"), "/snapshots"));
    s.set_prepend_module_to_snapshot(false);
    s
}

fn policy() -> Policy {
    let (acl, _warnings) = Acl::from_yaml(DEFAULT_ACL_YAML, &[]).expect("default ACL loads");
    Policy {
        auth: AuthMode::Password(Password::new("yourpassword")),
        acl: Some(acl),
        addresses: AddressPolicy::default(),
        deny_message_extra: None,
        allow_missing_role: false,
    }
}

fn request(raw_target: &str, connect: bool) -> Vec<u8> {
    let creds = base64::engine::general_purpose::STANDARD.encode("anyname:yourpassword");
    let method = if connect { "CONNECT" } else { "GET" };
    format!(
        "{method} {raw_target} HTTP/1.1\r\nHost: x\r\nProxy-Authorization: Basic {creds}\r\n\r\n"
    )
    .into_bytes()
}

fn client() -> Client {
    Client::plain("[fdaa:0:4:a7b:dc6:0:a:2]:53137".parse().unwrap())
}

const START: (i64, u32) = (1_610_537_713, 865_538_649);

#[test]
fn decision_line_matches_the_fly_page() {
    let policy = policy();
    let head = parse_request(&request("fly.io:443", true), &HeadLimits::default())
        .unwrap()
        .unwrap();
    let RequestForm::Connect(target) = &head.form else {
        panic!("not CONNECT")
    };
    let pending = decision::before_dns(&policy, target, ProxyType::Connect, &head.headers)
        .expect("allowed by ACL");
    let answers: [IpAddr; 1] = ["2a09:8280:1:a270:b8f5:b9f7:8891:f3".parse().unwrap()];
    let approved = decision::after_dns(&policy, pending, Ok(&answers), &SelfEndpoints::default())
        .expect("public address");
    let facts = RequestFacts::from_headers(
        "bvvdlsd11c3s4uipn73g".into(),
        client(),
        Timestamp::new(START.0, START.1),
        &head.headers,
    );
    let line = decision::approved_record(&facts, &approved)
        .to_line(Timestamp::new(1_610_537_713, 900_000_000))
        .render_text();
    assert_eq!(line, FLY_DECISION);
    settings().bind(|| insta::assert_snapshot!("fly_page_decision_line", line));
}

#[test]
fn close_line_matches_the_fly_page_with_real_byte_counts() {
    let dst: SocketAddr = "[2a09:8280:1:a270:b8f5:b9f7:8891:f3]:443".parse().unwrap();
    let rec = CloseRecord {
        id: "bvvdlsd11c3s4uipn73g".into(),
        proxy_type: ProxyType::Connect,
        requested_host: "fly.io:443".into(),
        role: "authed".into(),
        source: client().source,
        dst,
        start_time: Timestamp::new(START.0, START.1),
        end_time: Timestamp::new(1_610_537_714, 62_381_945),
        last_activity: Timestamp::new(1_610_537_714, 62_118_835),
        duration_secs: 0.170710048,
        bytes_in: 5123,
        bytes_out: 517,
        error: String::new(),
        trace_id: String::new(),
    };
    let line = rec
        .to_line(Timestamp::new(1_610_537_714, 100))
        .render_text();
    let expected = FLY_CLOSE.replace(
        "bytes_in=0xc000137310 bytes_out=0xc000137318",
        "bytes_in=5123 bytes_out=517",
    );
    assert_eq!(line, expected);
    settings().bind(|| insta::assert_snapshot!("fly_page_close_line", line));
}

#[test]
fn localhost_deny_body_matches_the_fly_page() {
    let policy = policy();
    let head = parse_request(&request("http://localhost/", false), &HeadLimits::default())
        .unwrap()
        .unwrap();
    let RequestForm::Absolute(uri) = &head.form else {
        panic!("not absolute-form")
    };
    let pending = decision::before_dns(&policy, &uri.target, ProxyType::Http, &head.headers)
        .expect("ACL reports");
    let answers: [IpAddr; 1] = ["127.0.0.1".parse().unwrap()];
    let refusal = decision::after_dns(&policy, pending, Ok(&answers), &SelfEndpoints::default())
        .expect_err("loopback");
    let reply = refusal.reply(&policy);
    assert_eq!(reply.status, 403);
    assert_eq!(
        reply.body,
        "Egress proxying is denied to host 'localhost': The destination address (127.0.0.1) was denied by rule 'Deny: Not Global Unicast'. destination address was denied by rule, see error.\n"
    );
    settings().bind(|| {
        insta::assert_snapshot!(
            "fly_page_localhost_reply",
            String::from_utf8_lossy(&reply.to_bytes())
        )
    });
}

#[test]
fn internal_names_are_refused_by_the_global_deny_list() {
    let policy = policy();
    let head = parse_request(&request("db.internal:5432", true), &HeadLimits::default())
        .unwrap()
        .unwrap();
    let RequestForm::Connect(target) = &head.form else {
        panic!("not CONNECT")
    };
    let refusal = decision::before_dns(&policy, target, ProxyType::Connect, &head.headers)
        .expect_err("denied");
    let reply = refusal.reply(&policy);
    assert_eq!(reply.status, 403);
    assert_eq!(reply.body, "Egress proxying is denied to host 'db.internal:5432': host matched rule in global deny list.\n");
    settings().bind(|| {
        insta::assert_snapshot!(
            "fly_page_internal_reply",
            String::from_utf8_lossy(&reply.to_bytes())
        )
    });
}
