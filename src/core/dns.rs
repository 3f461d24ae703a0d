//! DNS messages for `--resolver-address`: build a query, judge a response.
//!
//! Encoding and decoding are hickory-proto's (a well-kept, fuzzed parser,
//! built without its networking); this module holds our rules on top: a
//! response only counts if it answers *our* question (id, question name,
//! type and class: the anti-spoofing checks), CNAME chains are followed
//! only within the answer and only from the name we asked about, and every
//! failure has a clear, typed cause. The shell owns sockets, ids and time.

use std::fmt;
use std::net::IpAddr;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{DNSClass, Name, RData, RecordType};

/// Longest CNAME chain followed inside one answer (loops end here too).
pub const MAX_CNAME_CHAIN: usize = 16;
/// UDP payload size we advertise with EDNS (the DNS Flag Day 2020 figure,
/// which avoids IP fragmentation); larger answers come back truncated and
/// are retried over TCP.
pub const EDNS_UDP_PAYLOAD: u16 = 1232;

/// The two address questions asked for every name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueryType {
    A,
    Aaaa,
}

impl QueryType {
    fn record_type(self) -> RecordType {
        match self {
            QueryType::A => RecordType::A,
            QueryType::Aaaa => RecordType::AAAA,
        }
    }
}

/// What a response means for the lookup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// The addresses the name has (possibly none: NOERROR/NODATA), and the
    /// names the CNAME chain led through to them (without the name asked,
    /// lowercase, no trailing dot), so the caller can judge each one.
    Addresses {
        ips: Vec<IpAddr>,
        aliases: Vec<String>,
    },
    /// The answer did not fit in UDP: ask again over TCP.
    Truncated,
}

/// Why a response gives no addresses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DnsError {
    /// The name cannot be put in a query (empty label, label over 63 bytes…).
    BadName(String),
    /// Not a response to our query (wrong id, question, or not a response):
    /// over UDP it may be a spoofing attempt, so the shell ignores it and
    /// keeps waiting for the real one.
    NotOurs(&'static str),
    /// The bytes are not a DNS message.
    Malformed(String),
    /// NXDOMAIN: the name does not exist.
    NoSuchHost,
    /// SERVFAIL: the server could not answer.
    ServerFailure,
    /// Any other response code (REFUSED, FORMERR, NOTIMP…).
    Rcode(String),
}

impl fmt::Display for DnsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DnsError::BadName(why) => write!(f, "invalid name: {why}"),
            DnsError::NotOurs(why) => write!(f, "response does not match the query: {why}"),
            DnsError::Malformed(why) => write!(f, "malformed DNS response: {why}"),
            // Go's texts, which Smokescreen's logs show.
            DnsError::NoSuchHost => f.write_str("no such host"),
            DnsError::ServerFailure => f.write_str("server misbehaving"),
            DnsError::Rcode(code) => write!(f, "server answered {code}"),
        }
    }
}

impl std::error::Error for DnsError {}

fn query_name(name: &str) -> Result<Name, DnsError> {
    let fqdn = if name.ends_with('.') {
        name.to_string()
    } else {
        format!("{name}.")
    };
    let parsed = Name::from_ascii(&fqdn).map_err(|e| DnsError::BadName(e.to_string()))?;
    if parsed.is_root() {
        return Err(DnsError::BadName("empty name".to_string()));
    }
    Ok(parsed)
}

/// The wire bytes of a recursive query for `name` (normalised: lowercase
/// ASCII/punycode) with transaction id `id`. The shell picks `id` at random.
pub fn build_query(id: u16, name: &str, qtype: QueryType) -> Result<Vec<u8>, DnsError> {
    let mut message = Message::new(id, MessageType::Query, OpCode::Query);
    message.metadata.recursion_desired = true;
    let mut query = Query::query(query_name(name)?, qtype.record_type());
    query.set_query_class(DNSClass::IN);
    message.add_query(query);
    let mut edns = Edns::new();
    edns.set_max_payload(EDNS_UDP_PAYLOAD);
    message.set_edns(edns);
    message
        .to_vec()
        .map_err(|e| DnsError::BadName(e.to_string()))
}

/// Judge `bytes` as the response to the query built with the same
/// `(id, name, qtype)`.
pub fn parse_response(
    bytes: &[u8],
    id: u16,
    name: &str,
    qtype: QueryType,
) -> Result<Answer, DnsError> {
    let want = query_name(name)?;
    let message = Message::from_vec(bytes).map_err(|e| DnsError::Malformed(e.to_string()))?;
    let meta = &message.metadata;
    if meta.message_type != MessageType::Response {
        return Err(DnsError::NotOurs("not a response"));
    }
    if meta.id != id {
        return Err(DnsError::NotOurs("wrong id"));
    }
    let [question] = message.queries.as_slice() else {
        return Err(DnsError::NotOurs("not exactly one question"));
    };
    if question.name() != &want
        || question.query_type() != qtype.record_type()
        || question.query_class() != DNSClass::IN
    {
        return Err(DnsError::NotOurs("different question"));
    }
    if meta.truncation {
        return Ok(Answer::Truncated);
    }
    match meta.response_code {
        ResponseCode::NoError => {}
        ResponseCode::NXDomain => return Err(DnsError::NoSuchHost),
        ResponseCode::ServFail => return Err(DnsError::ServerFailure),
        other => return Err(DnsError::Rcode(other.to_string())),
    }
    let (ips, aliases) = addresses_for(&message, want, qtype);
    Ok(Answer::Addresses { ips, aliases })
}

/// A name as the ACL sees it: lowercase ASCII, no trailing dot.
fn host_text(name: &Name) -> String {
    name.to_ascii().trim_end_matches('.').to_ascii_lowercase()
}

/// Follow the CNAME chain from `name` through the answer section and
/// collect the addresses of the final name, and every name followed to get
/// there. Records for other names are ignored: a server cannot smuggle in
/// addresses for names we did not ask.
fn addresses_for(
    message: &Message,
    mut name: Name,
    qtype: QueryType,
) -> (Vec<IpAddr>, Vec<String>) {
    let mut out = Vec::new();
    let mut aliases: Vec<String> = Vec::new();
    for _ in 0..=MAX_CNAME_CHAIN {
        let mut next = None;
        for record in message.answers.iter().filter(|r| r.name == name) {
            if record.dns_class != DNSClass::IN {
                continue;
            }
            match (&record.data, qtype) {
                (RData::A(a), QueryType::A) => push_unique(&mut out, IpAddr::V4(a.0)),
                (RData::AAAA(a), QueryType::Aaaa) => push_unique(&mut out, IpAddr::V6(a.0)),
                (RData::CNAME(target), _) if next.is_none() => next = Some(target.0.clone()),
                _ => {}
            }
        }
        match next {
            Some(target) if out.is_empty() => {
                let text = host_text(&target);
                if !aliases.contains(&text) {
                    aliases.push(text);
                }
                name = target;
            }
            _ => break,
        }
    }
    (out, aliases)
}

fn push_unique(out: &mut Vec<IpAddr>, ip: IpAddr) {
    if !out.contains(&ip) {
        out.push(ip);
    }
}

/// Merge the A and AAAA outcomes into one answer: IPv4 addresses first,
/// then IPv6, each in the server's order (stable, so logs and the choice
/// of address to dial are reproducible). Any addresses win over the other
/// question's error; otherwise NXDOMAIN wins (the name does not exist),
/// then the A question's error.
pub fn merge(
    a: Result<Vec<IpAddr>, DnsError>,
    aaaa: Result<Vec<IpAddr>, DnsError>,
) -> Result<Vec<IpAddr>, DnsError> {
    match (a, aaaa) {
        (Ok(mut v4), Ok(v6)) => {
            for ip in v6 {
                push_unique(&mut v4, ip);
            }
            if v4.is_empty() {
                Err(DnsError::NoSuchHost)
            } else {
                Ok(v4)
            }
        }
        (Ok(v), Err(e)) | (Err(e), Ok(v)) => {
            if v.is_empty() {
                Err(e)
            } else {
                Ok(v)
            }
        }
        (Err(DnsError::NoSuchHost), Err(_)) | (Err(_), Err(DnsError::NoSuchHost)) => {
            Err(DnsError::NoSuchHost)
        }
        (Err(e), Err(_)) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::rr::rdata::{A, AAAA, CNAME};
    use hickory_proto::rr::Record;
    use proptest::prelude::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn n(s: &str) -> Name {
        Name::from_ascii(s).unwrap()
    }

    /// A response to `(id, name, qtype)` with `answers`, built the way a server would.
    fn response(id: u16, name: &str, qtype: RecordType, answers: Vec<Record>) -> Message {
        let mut m = Message::new(id, MessageType::Response, OpCode::Query);
        m.add_query(Query::query(n(name), qtype));
        for r in answers {
            m.add_answer(r);
        }
        m
    }

    fn a(name: &str, ip: [u8; 4]) -> Record {
        Record::from_rdata(n(name), 60, RData::A(A(Ipv4Addr::from(ip))))
    }

    fn cname(name: &str, target: &str) -> Record {
        Record::from_rdata(n(name), 60, RData::CNAME(CNAME(n(target))))
    }

    fn bytes(m: &Message) -> Vec<u8> {
        m.to_vec().unwrap()
    }

    #[test]
    fn query_round_trips_through_the_parser() {
        let q = build_query(0xbeef, "example.com", QueryType::Aaaa).unwrap();
        let m = Message::from_vec(&q).unwrap();
        assert_eq!(m.metadata.id, 0xbeef);
        assert!(m.metadata.recursion_desired);
        assert_eq!(m.queries.len(), 1);
        assert_eq!(m.queries[0].name(), &n("example.com."));
        assert_eq!(m.queries[0].query_type(), RecordType::AAAA);
        assert_eq!(
            m.edns.as_ref().map(|e| e.max_payload()),
            Some(EDNS_UDP_PAYLOAD)
        );
    }

    #[test]
    fn bad_names_are_refused() {
        for bad in ["", ".", "a..b", &"x".repeat(64)] {
            assert!(
                matches!(build_query(1, bad, QueryType::A), Err(DnsError::BadName(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn cname_chain_is_followed_within_the_answer() {
        let m = response(
            7,
            "www.example.com.",
            RecordType::A,
            vec![
                cname("www.example.com.", "edge.example.net."),
                cname("edge.example.net.", "pop.example.org."),
                a("pop.example.org.", [192, 0, 2, 10]),
                a("pop.example.org.", [192, 0, 2, 11]),
                // Not on the chain: must be ignored.
                a("evil.example.", [10, 0, 0, 1]),
            ],
        );
        assert_eq!(
            parse_response(&bytes(&m), 7, "WWW.example.com", QueryType::A),
            Ok(Answer::Addresses {
                ips: vec!["192.0.2.10".parse().unwrap(), "192.0.2.11".parse().unwrap()],
                aliases: vec!["edge.example.net".into(), "pop.example.org".into()],
            })
        );
    }

    #[test]
    fn cname_loop_ends() {
        let m = response(
            7,
            "a.example.",
            RecordType::A,
            vec![
                cname("a.example.", "b.example."),
                cname("b.example.", "a.example."),
            ],
        );
        assert_eq!(
            parse_response(&bytes(&m), 7, "a.example", QueryType::A),
            Ok(Answer::Addresses {
                ips: vec![],
                aliases: vec!["b.example".into(), "a.example".into()],
            })
        );
    }

    #[test]
    fn mismatches_are_not_ours() {
        let m = response(
            7,
            "a.example.",
            RecordType::A,
            vec![a("a.example.", [192, 0, 2, 1])],
        );
        let b = bytes(&m);
        assert_eq!(
            parse_response(&b, 8, "a.example", QueryType::A),
            Err(DnsError::NotOurs("wrong id"))
        );
        assert_eq!(
            parse_response(&b, 7, "b.example", QueryType::A),
            Err(DnsError::NotOurs("different question"))
        );
        assert_eq!(
            parse_response(&b, 7, "a.example", QueryType::Aaaa),
            Err(DnsError::NotOurs("different question"))
        );
        let q = build_query(7, "a.example", QueryType::A).unwrap();
        assert_eq!(
            parse_response(&q, 7, "a.example", QueryType::A),
            Err(DnsError::NotOurs("not a response"))
        );
    }

    #[test]
    fn rcodes_and_truncation() {
        let mut m = response(1, "x.example.", RecordType::A, vec![]);
        m.metadata.response_code = ResponseCode::NXDomain;
        assert_eq!(
            parse_response(&bytes(&m), 1, "x.example", QueryType::A),
            Err(DnsError::NoSuchHost)
        );
        m.metadata.response_code = ResponseCode::ServFail;
        assert_eq!(
            parse_response(&bytes(&m), 1, "x.example", QueryType::A),
            Err(DnsError::ServerFailure)
        );
        m.metadata.response_code = ResponseCode::Refused;
        let e = parse_response(&bytes(&m), 1, "x.example", QueryType::A).unwrap_err();
        assert!(matches!(e, DnsError::Rcode(_)), "{e:?}");
        m.metadata.response_code = ResponseCode::NoError;
        m.metadata.truncation = true;
        assert_eq!(
            parse_response(&bytes(&m), 1, "x.example", QueryType::A),
            Ok(Answer::Truncated)
        );
        assert_eq!(DnsError::NoSuchHost.to_string(), "no such host");
        assert_eq!(DnsError::ServerFailure.to_string(), "server misbehaving");
    }

    #[test]
    fn merge_orders_v4_then_v6_and_prefers_answers() {
        let v4: IpAddr = "192.0.2.1".parse().unwrap();
        let v6: IpAddr = IpAddr::V6(Ipv6Addr::LOCALHOST);
        assert_eq!(merge(Ok(vec![v4]), Ok(vec![v6])), Ok(vec![v4, v6]));
        assert_eq!(
            merge(Err(DnsError::ServerFailure), Ok(vec![v6])),
            Ok(vec![v6])
        );
        assert_eq!(
            merge(Ok(vec![]), Err(DnsError::ServerFailure)),
            Err(DnsError::ServerFailure)
        );
        assert_eq!(merge(Ok(vec![]), Ok(vec![])), Err(DnsError::NoSuchHost));
        assert_eq!(
            merge(Err(DnsError::ServerFailure), Err(DnsError::NoSuchHost)),
            Err(DnsError::NoSuchHost)
        );
        let _ = AAAA(Ipv6Addr::LOCALHOST);
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..600), id in any::<u16>()) {
            let _ = parse_response(&b, id, "example.com", QueryType::A);
        }

        #[test]
        fn mutated_responses_never_panic(i in 0usize..200, x in any::<u8>()) {
            let m = response(9, "www.example.com.", RecordType::A, vec![
                cname("www.example.com.", "edge.example.net."),
                a("edge.example.net.", [192, 0, 2, 1]),
            ]);
            let mut b = bytes(&m);
            if let Some(byte) = b.get_mut(i) { *byte ^= x; }
            let _ = parse_response(&b, 9, "www.example.com", QueryType::A);
        }
    }
}
