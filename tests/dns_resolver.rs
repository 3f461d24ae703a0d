#![allow(clippy::disallowed_methods)] // tests own sockets and clocks
//! `--resolver-address`'s client against a tiny in-test DNS server on
//! 127.0.0.1 (UDP and TCP on one port), inside a private network namespace.

mod common;

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, UdpSocket};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::{in_private_netns, Origin, Proxy};
use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, CNAME};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use smokescreen::shell::resolve::dns::DnsClient;
use smokescreen::shell::resolve::Resolver;

/// Counts TCP queries, to prove the fallback happened.
struct Server {
    addr: SocketAddr,
    tcp_queries: Arc<AtomicUsize>,
}

fn n(s: &str) -> Name {
    Name::from_ascii(s).unwrap()
}

/// The fixed zone. `tcp`: the query came over TCP.
fn answer(query: &Message, tcp: bool) -> Option<Message> {
    let q = query.queries.first()?;
    let name = q.name().to_ascii().to_ascii_lowercase();
    let mut r = Message::new(query.metadata.id, MessageType::Response, OpCode::Query);
    r.add_query(q.clone());
    let a = |host: &str, ip: [u8; 4]| Record::from_rdata(n(host), 60, RData::A(A(ip.into())));
    let aaaa = |host: &str, ip: &str| {
        Record::from_rdata(n(host), 60, RData::AAAA(AAAA(ip.parse().unwrap())))
    };
    match (name.as_str(), q.query_type()) {
        ("dual.test.", RecordType::A) => {
            r.add_answer(a("dual.test.", [192, 0, 2, 1]));
            r.add_answer(a("dual.test.", [192, 0, 2, 2]));
        }
        ("dual.test.", RecordType::AAAA) => {
            r.add_answer(aaaa("dual.test.", "2001:db8::1"));
        }
        ("alias.test.", RecordType::A) => {
            r.add_answer(Record::from_rdata(
                n("alias.test."),
                60,
                RData::CNAME(CNAME(n("target.test."))),
            ));
            r.add_answer(a("target.test.", [192, 0, 2, 9]));
            r.add_answer(a("unrelated.test.", [10, 9, 9, 9]));
        }
        // An innocent name that is an alias of a globally denied one.
        ("cnameint.test.", RecordType::A) => {
            r.add_answer(Record::from_rdata(
                n("cnameint.test."),
                60,
                RData::CNAME(CNAME(n("DB.Internal."))),
            ));
            r.add_answer(a("db.internal.", [127, 0, 0, 1]));
        }
        ("big.test.", RecordType::A) if !tcp => r.metadata.truncation = true,
        ("big.test.", RecordType::A) => {
            r.add_answer(a("big.test.", [192, 0, 2, 7]));
        }
        ("nx.test.", _) => r.metadata.response_code = ResponseCode::NXDomain,
        ("fail.test.", _) => r.metadata.response_code = ResponseCode::ServFail,
        ("spoof.test.", RecordType::A) => {
            r.add_answer(a("spoof.test.", [192, 0, 2, 5]));
        }
        ("slow.test.", _) => return None,
        _ => {}
    }
    Some(r)
}

fn start_server() -> Server {
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = udp.local_addr().unwrap();
    let tcp = TcpListener::bind(addr).unwrap();
    let tcp_queries = Arc::new(AtomicUsize::new(0));
    thread::spawn(move || {
        let mut buf = [0u8; 4096];
        loop {
            let Ok((len, from)) = udp.recv_from(&mut buf) else {
                return;
            };
            let Ok(query) = Message::from_vec(&buf[..len]) else {
                continue;
            };
            let Some(reply) = answer(&query, false) else {
                continue;
            };
            let spoof = reply
                .queries
                .first()
                .is_some_and(|q| q.name().to_ascii() == "spoof.test.");
            if spoof {
                // A forged reply first: same question, wrong id, a private address.
                let mut forged = reply.clone();
                forged.metadata.id = reply.metadata.id.wrapping_add(1);
                forged.answers.clear();
                forged.add_answer(Record::from_rdata(
                    n("spoof.test."),
                    60,
                    RData::A(A([10, 0, 0, 66].into())),
                ));
                let _ = udp.send_to(&forged.to_vec().unwrap(), from);
            }
            let _ = udp.send_to(&reply.to_vec().unwrap(), from);
        }
    });
    let counter = Arc::clone(&tcp_queries);
    thread::spawn(move || {
        for stream in tcp.incoming() {
            let Ok(mut s) = stream else { return };
            counter.fetch_add(1, Ordering::SeqCst);
            let mut len = [0u8; 2];
            if s.read_exact(&mut len).is_err() {
                continue;
            }
            let mut q = vec![0u8; u16::from_be_bytes(len) as usize];
            if s.read_exact(&mut q).is_err() {
                continue;
            }
            let Ok(query) = Message::from_vec(&q) else {
                continue;
            };
            let Some(reply) = answer(&query, true) else {
                continue;
            };
            let bytes = reply.to_vec().unwrap();
            let mut framed = (bytes.len() as u16).to_be_bytes().to_vec();
            framed.extend_from_slice(&bytes);
            let _ = s.write_all(&framed);
        }
    });
    Server { addr, tcp_queries }
}

fn lookup(client: &DnsClient, name: &str) -> Result<Vec<IpAddr>, String> {
    async_std::task::block_on(client.lookup(name)).map_err(|e| e.to_string())
}

fn ips(list: &[&str]) -> Vec<IpAddr> {
    list.iter().map(|s| s.parse().unwrap()).collect()
}

#[test]
fn resolver_address_answers_truncation_errors_spoofing_and_timeouts() {
    if !in_private_netns("resolver_address_answers_truncation_errors_spoofing_and_timeouts") {
        return;
    }
    let server = start_server();
    let client = DnsClient::new(vec![server.addr], Duration::from_secs(5));

    // A and AAAA merged: IPv4 first, then IPv6, in the server's order.
    assert_eq!(
        lookup(&client, "dual.test"),
        Ok(ips(&["192.0.2.1", "192.0.2.2", "2001:db8::1"]))
    );
    // CNAME followed inside the answer; the off-chain record is ignored.
    assert_eq!(lookup(&client, "alias.test"), Ok(ips(&["192.0.2.9"])));
    let chain = async_std::task::block_on(client.lookup_chain("alias.test")).unwrap();
    assert_eq!(chain.aliases, ["target.test"]);
    // Truncated over UDP: asked again over TCP.
    assert_eq!(lookup(&client, "big.test"), Ok(ips(&["192.0.2.7"])));
    assert!(server.tcp_queries.load(Ordering::SeqCst) >= 1);
    // A forged reply with the wrong id is ignored; the real one is used.
    assert_eq!(lookup(&client, "spoof.test"), Ok(ips(&["192.0.2.5"])));
    // NXDOMAIN and SERVFAIL are clear errors naming the server.
    assert_eq!(
        lookup(&client, "nx.test"),
        Err(format!("lookup nx.test on {}: no such host", server.addr))
    );
    assert_eq!(
        lookup(&client, "fail.test"),
        Err(format!(
            "lookup fail.test on {}: server misbehaving",
            server.addr
        ))
    );

    // No answer: bounded by the DNS timeout.
    let quick = DnsClient::new(vec![server.addr], Duration::from_millis(300));
    let started = Instant::now();
    assert_eq!(
        lookup(&quick, "slow.test"),
        Err(format!("lookup slow.test on {}: i/o timeout", server.addr))
    );
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(250) && took < Duration::from_secs(3),
        "{took:?}"
    );

    // A dead first server: the second answers within the same lookup.
    let dead = UdpSocket::bind("127.0.0.1:0").unwrap();
    let two = DnsClient::new(
        vec![dead.local_addr().unwrap(), server.addr],
        Duration::from_secs(2),
    );
    assert_eq!(lookup(&two, "big.test"), Ok(ips(&["192.0.2.7"])));

    // Behind the Resolver: static pins still come first.
    let mut pins = std::collections::HashMap::new();
    pins.insert("dual.test".to_string(), ips(&["192.0.2.200"]));
    let resolver = Resolver::new(pins, Duration::from_secs(5)).with_servers(vec![server.addr]);
    assert_eq!(
        async_std::task::block_on(resolver.lookup("dual.test")),
        Ok(ips(&["192.0.2.200"]))
    );
    assert_eq!(
        async_std::task::block_on(resolver.lookup("alias.test")),
        Ok(ips(&["192.0.2.9"]))
    );
}

/// Issue 13, item 8: with `--resolver-address`, a name whose CNAME chain
/// leads to a globally denied name (`*.internal` in the default ACL) is
/// refused like that name, even with the address itself allowed; it used
/// to be matched only as asked, and the internal address was dialled.
#[test]
fn a_cname_to_a_globally_denied_name_is_refused() {
    if !in_private_netns("a_cname_to_a_globally_denied_name_is_refused") {
        return;
    }
    let server = start_server();
    let origin = Origin::echo();
    let mut proxy = Proxy::start(&[
        &format!("--resolver-address={}", server.addr),
        &format!("--allow-address={}", origin.addr),
        "--unsafe-allow-private-ranges",
        "--log-level=debug",
    ]);
    let target = format!("cnameint.test:{}", origin.addr.port());
    let (_s, head) = common::open_tunnel_at(proxy.addr, &target, b"");
    assert!(head.starts_with("HTTP/1.1 403 "), "{head}");
    assert!(head.contains("global deny list"), "{head}");
    let line = proxy.wait_line(|l| l.contains("CANONICAL-PROXY-DECISION"));
    assert!(
        line.contains("alias (CNAME) of db.internal, which matched rule in global deny list"),
        "{line}"
    );
    assert!(
        line.contains("decision_reason=\"host matched rule in global deny list\""),
        "{line}"
    );
    let chain = proxy.wait_line(|l| l.contains("followed CNAME chain"));
    assert!(chain.contains("aliases=db.internal"), "{chain}");
    assert_eq!(origin.accepted(), 0, "the aliased address was dialled");
}
