//! One client connection: read a head, ask the core, then tunnel (CONNECT)
//! or forward (absolute-form), looping for keep-alive.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use crate::shell::transport::net::Tcp;

use crate::core::auth::ClientCert;
use crate::shell::front::stream::{self, ClientStream, Endpoint as _};

use crate::core::addr::SelfEndpoints;
use crate::core::decision::{
    self, Approved, Lookup, Pending, Policy, Refusal, RefusalKind, RequestFacts,
};
use crate::core::forward as core_forward;
use crate::core::head::{HeadError, RequestForm, RequestHead, RequestParser};
use crate::core::record::{Client, CloseRecord, Level, ProxyType};
use crate::core::reply::{self, Reply, CONNECT_ESTABLISHED};
use crate::core::target::Target;
use crate::core::time::Timestamp;
use crate::shell::http::forward::{self, Upstream};
use crate::shell::http::upstream_proxy as via_proxy;
use crate::shell::mitm;
use crate::shell::observe::conn_track;
use crate::shell::observe::connect_failure::ConnectFailure;
use crate::shell::observe::logging::{self, emit};
use crate::shell::observe::metrics;
use crate::shell::runtime;
use crate::shell::serve::limits::{self, Permit};
use crate::shell::serve::state::{closed, Shared};
use crate::shell::transport::io::{read_more_timeout, write_all};
use crate::shell::transport::pool;
use crate::shell::transport::tunnel;

/// Serve one accepted connection to completion.
pub async fn serve(shared: Arc<Shared>, tcp: Tcp, peer: SocketAddr) {
    let _open = metrics::get().connection_opened();
    // Boxed: reading heads, deciding, dialling and forwarding need several
    // times the state a running tunnel does. In an allocation of its own,
    // that state is freed when a tunnel starts, so the task of an idle
    // tunnel keeps only the tunnel's (docs/performance.md, change 16).
    if let Some(established) = Box::pin(requests(&shared, tcp, peer)).await {
        relay(&shared, established).await;
    }
}

/// The connection's requests, until it closes or a CONNECT tunnel is
/// established (returned for [`relay`] to run; the tunnel closes the
/// client itself).
async fn requests(shared: &Shared, tcp: Tcp, peer: SocketAddr) -> Option<Box<Established<'_>>> {
    // The address the client reached us on: the listener's own, unless it
    // is a wildcard (then ask the socket; one syscall saved otherwise).
    let local_ip = match shared.listen.first() {
        Some(l) if !l.ip().is_unspecified() => Some(l.ip()),
        _ => tcp.local_addr().ok().map(|a| a.ip()),
    };
    let me = SelfEndpoints {
        listen: shared.listen.clone(),
        local_ip,
        local_addresses: shared.local_addresses(),
    };
    // PROXY header and TLS handshake first, both within the header timeout.
    let limit = shared.settings.read_header_timeout;
    let opened = match stream::open(&shared.settings.front, tcp.clone(), peer, limit).await {
        Ok(o) => o,
        Err((source, error)) => {
            stream::log_refused(source, peer, &error);
            let _ = tcp.shutdown(std::net::Shutdown::Both);
            return None;
        }
    };
    let (stream, peer, cert) = (opened.client, opened.peer, opened.cert);
    let cert = cert.as_ref();
    let mut buf: Vec<u8> = opened.buf;
    let mut upstream: Option<Upstream> = None;
    let mut first = true;
    loop {
        let head = match read_head(shared, &stream, peer, &mut buf, first).await {
            HeadRead::Head(h) => h,
            HeadRead::Closed => break,
            HeadRead::Invalid(err) => {
                refuse_malformed(&stream, peer, &err).await;
                break;
            }
        };
        first = false;
        buf.drain(..head.head_len);
        let policy = shared.policy();
        let keep_going = match &head.form {
            RequestForm::Origin(_) => {
                let reply = reply::non_proxy_request();
                let _ = write_all(&stream, &reply.to_bytes()).await;
                emit(
                    &logging::line(Level::Warning, "non-proxy request refused")
                        .with("source_addr", peer.to_string())
                        .with("status", reply.status),
                );
                false
            }
            RequestForm::Connect(target) => {
                let target = target.clone();
                let Some(step) =
                    first_step(shared, &policy, &stream, (peer, cert), &target, &head).await
                else {
                    break;
                };
                match shared.limiter.admit_tunnel() {
                    Ok(tunnel_permit) => {
                        let established = establish(
                            shared,
                            &policy,
                            &me,
                            (stream.clone(), peer),
                            step,
                            tunnel_permit,
                            std::mem::take(&mut buf),
                        )
                        .await;
                        if established.is_some() {
                            return established;
                        }
                    }
                    Err(refusal) => {
                        limits::refuse(&stream, peer, Some(&target.requested), refusal).await;
                    }
                }
                false
            }
            RequestForm::Absolute(uri) => {
                let target = uri.target.clone();
                let Some(step) =
                    first_step(shared, &policy, &stream, (peer, cert), &target, &head).await
                else {
                    break;
                };
                // Boxed: forwarding's state is large, and inline it would
                // size every connection's task, idle tunnels included.
                Box::pin(forward_one(
                    shared,
                    &policy,
                    &me,
                    &stream,
                    step,
                    head,
                    &mut buf,
                    &mut upstream,
                ))
                .await
            }
        };
        if !keep_going {
            break;
        }
    }
    stream::close_write(&stream).await;
    stream.abort();
    None
}

enum HeadRead {
    Head(RequestHead),
    /// The client closed (or went idle while draining) between requests.
    Closed,
    Invalid(HeadError),
}

/// Read until a complete head parses. The header-read timeout bounds the
/// whole head (slowloris), and between keep-alive requests the idle timeout
/// applies instead; a drain closes idle connections at once.
async fn read_head(
    shared: &Shared,
    stream: &ClientStream,
    peer: SocketAddr,
    buf: &mut Vec<u8>,
    first: bool,
) -> HeadRead {
    let limits = shared.settings.head_limits;
    let mut started = Instant::now();
    if buf.is_empty() && !first {
        // Between requests: wait for the next one without holding a buffer,
        // until the idle timeout or a drain. The head-read timeout starts
        // when its first byte arrives.
        *buf = Vec::new();
        let idle = shared
            .settings
            .idle_timeout
            .unwrap_or(std::time::Duration::from_secs(3600));
        let next = async { Some(wait_for_bytes(stream, buf, idle).await) };
        let drain = async {
            closed(&shared.draining).await;
            None
        };
        match futures_lite::future::or(next, drain).await {
            Some(true) => started = Instant::now(),
            Some(false) | None => return HeadRead::Closed,
        }
    }
    // Resumed after every read: only new bytes are examined.
    let mut parser = RequestParser::default();
    loop {
        match parser.parse(buf, &limits) {
            Ok(Some(head)) => return HeadRead::Head(head),
            Ok(None) => {}
            Err(e) => return HeadRead::Invalid(e),
        }
        let left = shared
            .settings
            .read_header_timeout
            .saturating_sub(started.elapsed());
        let read = read_more_timeout(stream, buf, left).await;
        match read {
            Ok(0) => return HeadRead::Closed,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut && !buf.is_empty() => {
                // A partial head that never completed (slowloris): tell the client why.
                let reply = Reply::text(408, "timed out reading the request head\n");
                let _ = write_all(stream, &reply.to_bytes()).await;
                let line = logging::line(Level::Warning, "request head timed out")
                    .with("bytes_received", buf.len() as u64)
                    .with("status", reply.status)
                    .with("source_addr", peer.to_string());
                emit(&line);
                return HeadRead::Closed;
            }
            Err(_) => return HeadRead::Closed,
        }
    }
}

/// Wait up to `idle` for the client's next bytes. Plain TCP waits on the
/// reactor for readability (an idle keep-alive connection holds no buffer);
/// TLS reads into `buf`. `false`: EOF, error or timeout (an EOF that woke a
/// plain wait is seen by the head read that follows).
async fn wait_for_bytes(
    stream: &ClientStream,
    buf: &mut Vec<u8>,
    idle: std::time::Duration,
) -> bool {
    match stream.waitable() {
        Some(tcp) => runtime::timeout(idle, tcp.readable()).await.is_ok(),
        None => matches!(read_more_timeout(stream, buf, idle).await, Ok(n) if n > 0),
    }
}

async fn refuse_malformed(stream: &ClientStream, peer: SocketAddr, err: &HeadError) {
    let reply = Reply::text(err.status(), format!("{err}\n"));
    let _ = write_all(stream, &reply.to_bytes()).await;
    emit(
        &logging::line(Level::Warning, "malformed request refused")
            .with("error", err.to_string())
            .with("source_addr", peer.to_string())
            .with("status", reply.status),
    );
}

/// Smokescreen's separate error line for role failures (kept for log
/// compatibility), plus our specific cause. Never includes credentials.
fn log_refusal(facts: &RequestFacts, refusal: &Refusal) {
    if let RefusalKind::Role(failure) = refusal.kind {
        let mut line = logging::line(Level::Error, "Unable to get role for request")
            .with("allow_missing_role", false)
            .with("error", refusal.error.clone().unwrap_or_default())
            .with("is_missing_role", false)
            .with("id", facts.id.as_str());
        line = line.with("cause", failure.detail());
        emit(&line);
    }
    emit(&decision::refusal_record(facts, refusal).to_line(logging::now()));
}

fn new_id() -> String {
    xid::new().to_string()
}

/// A proxy request past step one of the decision (role and ACL).
struct FirstStep<'a> {
    outcome: Result<Pending, Box<Refusal>>,
    /// When the decision started, for its duration metric.
    started: Instant,
    admitted: Admitted<'a>,
}

/// An admitted request: its permit and what its log records need.
struct Admitted<'a> {
    permit: Permit<'a>,
    start: Timestamp,
    facts: RequestFacts,
}

/// Step one of the decision, then the request limits. A request that
/// spends no budget (no role: 407) is answered here and `None` returned
/// (the caller closes), so a noisy unauthenticated peer can neither use up
/// the rate nor the concurrency of authenticated clients; so is a request
/// over a limit (429/503).
async fn first_step<'a>(
    shared: &'a Shared,
    policy: &Policy,
    stream: &ClientStream,
    (peer, cert): (SocketAddr, Option<&ClientCert>),
    target: &Target,
    head: &RequestHead,
) -> Option<FirstStep<'a>> {
    let started = Instant::now();
    let start = logging::now();
    let facts = facts(head, peer, cert, start);
    let proxy_type = match head.form {
        RequestForm::Connect(_) => ProxyType::Connect,
        _ => ProxyType::Http,
    };
    let outcome = decision::before_dns_for(policy, target, proxy_type, &head.headers, cert);
    metrics::get().acl_decided(&outcome);
    if !decision::spends_request_budget(&outcome) {
        metrics::get().decided(started.elapsed());
        if let Err(refusal) = &outcome {
            log_refusal(&facts, refusal);
            let _ = write_all(stream, &refusal.reply(policy).to_bytes()).await;
        }
        return None;
    }
    match shared.limiter.admit_request() {
        Ok(permit) => Some(FirstStep {
            outcome,
            started,
            admitted: Admitted {
                permit,
                start,
                facts,
            },
        }),
        Err(refusal) => {
            limits::refuse(stream, peer, Some(&target.requested), refusal).await;
            None
        }
    }
}

/// Step two of the decision with the lookup before it, timed (from step
/// one) for the metrics whatever the outcome.
async fn decide(
    shared: &Shared,
    policy: &Policy,
    me: &SelfEndpoints,
    first: Result<Pending, Box<Refusal>>,
    started: Instant,
) -> Result<Approved, Box<Refusal>> {
    let result = match first {
        Err(refusal) => Err(refusal),
        Ok(pending) => {
            let m = metrics::get();
            let result = match pending.lookup.clone() {
                // Smokescreen counts every request as a resolver attempt, literals too.
                Lookup::Literal(ip) => {
                    m.looked_up(std::time::Duration::ZERO, true);
                    decision::after_dns(policy, pending, Ok(&[ip]), me)
                }
                // Boxed: the lookup's state is ~3 KiB and, inline, would
                // stay in every connection's task for its whole life (an
                // idle tunnel's included); an address literal needs none.
                Lookup::Name(name) => Box::pin(look_up(shared, policy, me, pending, name)).await,
            };
            m.addresses_checked(&result, policy, me);
            result
        }
    };
    metrics::get().decided(started.elapsed());
    result
}

/// The CNAME chain a lookup followed, at debug level (every name on it is
/// judged by the core against the global deny list).
fn log_aliases(name: &str, aliases: &[String]) {
    if !aliases.is_empty() {
        emit(
            &logging::line(Level::Debug, "followed CNAME chain")
                .with("name", name.to_string())
                .with("aliases", aliases.join(",")),
        );
    }
}

/// Dial exactly the approved address, within the connect timeout.
/// Resolve `name`, check every name of its chain and every answer.
async fn look_up(
    shared: &Shared,
    policy: &Policy,
    me: &SelfEndpoints,
    pending: Pending,
    name: String,
) -> Result<Approved, Box<Refusal>> {
    let asked = Instant::now();
    let answer = shared.resolver.lookup_chain(&name).await;
    metrics::get().looked_up(asked.elapsed(), answer.is_ok());
    match answer {
        Ok(found) => {
            log_aliases(&name, &found.aliases);
            let pending = decision::aliases_checked(policy, pending, &found.aliases)?;
            decision::after_dns(policy, pending, Ok(&found.ips), me)
        }
        Err(e) => decision::after_dns(policy, pending, Err(&e), me),
    }
}

async fn dial(shared: &Shared, approved: Approved) -> Result<(Tcp, Approved), Box<Refusal>> {
    let limit = shared.settings.connect_timeout;
    let started = Instant::now();
    let dialled = runtime::timeout(limit, Tcp::connect(approved.addr)).await;
    let failure = dialled.as_ref().err().map(ConnectFailure::of);
    metrics::get().dialled(started.elapsed(), failure);
    match dialled {
        Ok(s) => {
            let _ = s.set_nodelay(true);
            Ok((s, approved))
        }
        Err(e) if e.kind() == std::io::ErrorKind::TimedOut => Err(Box::new(decision::dial_failed(
            approved,
            &format!("dial tcp {}: i/o timeout", limit_text(limit)),
            true,
        ))),
        Err(e) => {
            let text = format!("dial tcp {}: {e}", approved.addr);
            Err(Box::new(decision::dial_failed(approved, &text, false)))
        }
    }
}

fn limit_text(limit: std::time::Duration) -> String {
    format!("after {limit:?}")
}

fn facts(
    head: &RequestHead,
    peer: SocketAddr,
    cert: Option<&ClientCert>,
    start: Timestamp,
) -> RequestFacts {
    RequestFacts::from_headers(
        new_id(),
        Client::with_cert(peer, cert),
        start,
        &head.headers,
    )
}

/// A CONNECT tunnel whose `200` is written: what relaying it and its
/// CN-CLOSE record need, and nothing the decision or the dial used. Boxed
/// when handed from [`requests`] to [`relay`], so it is stored once (an
/// `async fn` keeps an argument it moves into a local twice).
struct Established<'a> {
    client: ClientStream,
    peer: SocketAddr,
    upstream: Tcp,
    /// Bytes the client sent right after the CONNECT head.
    eager: Vec<u8>,
    approved: Approved,
    facts: RequestFacts,
    start: Timestamp,
    /// The tunnel's slot, freed when it closes.
    permit: Permit<'a>,
}

/// Decide, dial (directly or through an upstream proxy) and answer a
/// CONNECT. `None` when it was refused (the refusal is answered and
/// logged here).
#[allow(clippy::too_many_arguments)]
async fn establish<'a>(
    shared: &Shared,
    policy: &Policy,
    me: &SelfEndpoints,
    (client, peer): (ClientStream, SocketAddr),
    step: FirstStep<'_>,
    tunnel_permit: Permit<'a>,
    eager: Vec<u8>,
) -> Option<Box<Established<'a>>> {
    let Admitted {
        permit: request_permit,
        start,
        facts,
    } = step.admitted;
    let outcome = match decide(shared, policy, me, step.outcome, step.started).await {
        Ok(approved) => match shared.settings.upstream.for_target(
            &approved.target,
            true,
            approved.verdicts.requested_proxy.clone().as_ref(),
        ) {
            Some(proxy) => {
                // A proxy the client named is a destination: the address
                // rules judge where it resolves (the operator's are trusted).
                let chosen = match approved.verdicts.requested_proxy {
                    Some(_) => via_proxy::Chosen::ByClient(&policy.addresses, me),
                    None => via_proxy::Chosen::ByOperator,
                };
                // Boxed: resolving and asking a parent proxy takes ~9 KiB
                // of state that only tunnels through a parent need.
                Box::pin(via_proxy::connect_for(shared, approved, proxy, chosen)).await
            }
            None => dial(shared, approved)
                .await
                .map(|(s, a)| (s, a, Vec::new(), None)),
        },
        Err(r) => Err(r),
    };
    let (upstream, approved, from_proxy, via) = match outcome {
        Ok(ok) => ok,
        Err(refusal) => {
            log_refusal(&facts, &refusal);
            // Answer and close without reading anything else (RFC 9931).
            let _ = write_all(&client, &refusal.reply(policy).to_bytes()).await;
            return None;
        }
    };
    let mut record = decision::approved_record(&facts, &approved);
    record.upstream_proxy = via;
    emit(&record.to_line(logging::now()));
    if write_all(&client, CONNECT_ESTABLISHED).await.is_err() {
        return None;
    }
    // Bytes the upstream proxy sent past its answer are the destination's.
    if !from_proxy.is_empty() && write_all(&client, &from_proxy).await.is_err() {
        return None;
    }
    // The request is answered; from here on only the tunnel cap applies.
    drop(request_permit);
    Some(Box::new(Established {
        client,
        peer,
        upstream,
        eager,
        approved,
        facts,
        start,
        permit: tunnel_permit,
    }))
}

/// Move a tunnel's bytes until it ends, then log its CN-CLOSE record.
async fn relay(shared: &Shared, established: Box<Established<'_>>) {
    // Fields are used in place, not moved into locals (each would be a
    // second copy in this future).
    let (approved, facts, start) = (&established.approved, &established.facts, established.start);
    let started = Instant::now();
    let open_tunnel = metrics::get().tunnel_opened();
    let counters = std::sync::Arc::new(tunnel::Counters::default());
    let tracked = conn_track::get().track(|| conn_track::Tracked {
        role: approved.verdicts.role.clone(),
        rhost: approved.target.requested.clone(),
        raddr: approved.addr,
        created: start,
        counters: std::sync::Arc::clone(&counters),
    });
    let intercept = approved.verdicts.intercept.as_deref();
    let stats = match (intercept, &shared.settings.mitm) {
        (Some(intercept), Some(mitm)) => {
            let session = mitm::session::Session {
                shared,
                mitm,
                approved,
                intercept,
                facts,
            };
            let run =
                Box::pin(session.run(established.client, established.eager, established.upstream));
            let stop = async {
                closed(&shared.force_stop).await;
                mitm::session::Ended::stopped()
            };
            let ended = futures_lite::future::or(run, stop).await;
            tunnel::TunnelStats {
                bytes_in: ended.bytes_in,
                bytes_out: ended.bytes_out,
                last_activity: ended.last_activity,
                spliced: 0,
                error: ended.error.map(tunnel::TunnelError::Intercepted),
            }
        }
        _ => {
            let stop = closed(&shared.force_stop);
            let idle = shared.settings.idle_timeout;
            tunnel::run(
                &pool::GLOBAL,
                established.client,
                established.upstream,
                established.eager,
                idle,
                stop,
                &counters,
            )
            .await
        }
    };
    drop(tracked);
    metrics::get().tunnel_closed(&stats, started.elapsed(), &approved.verdicts);
    drop(open_tunnel);
    // The tunnel is closed: free its slot before saying so in the log.
    drop(established.permit);
    let end = logging::now();
    let record = CloseRecord {
        id: facts.id.clone(),
        proxy_type: ProxyType::Connect,
        requested_host: approved.target.requested.clone(),
        role: approved.verdicts.role.clone(),
        source: established.peer,
        dst: approved.addr,
        start_time: start,
        end_time: end,
        last_activity: stats.last_activity,
        duration_secs: started.elapsed().as_secs_f64(),
        bytes_in: stats.bytes_in,
        bytes_out: stats.bytes_out,
        error: stats
            .error
            .as_ref()
            .map(|e| e.to_string())
            .unwrap_or_default(),
        trace_id: facts.trace_id.clone(),
    };
    emit(&record.to_line(end));
}

/// Forward one absolute-form request. Returns whether the client connection
/// may carry another request.
#[allow(clippy::too_many_arguments)]
async fn forward_one(
    shared: &Shared,
    policy: &Policy,
    me: &SelfEndpoints,
    client: &ClientStream,
    step: FirstStep<'_>,
    head: RequestHead,
    buf: &mut Vec<u8>,
    upstream: &mut Option<Upstream>,
) -> bool {
    // `admitted` holds the request permit until the exchange is over.
    let admitted = step.admitted;
    let facts = &admitted.facts;
    let approved = match decide(shared, policy, me, step.outcome, step.started).await {
        Ok(a) => a,
        Err(refusal) => {
            log_refusal(facts, &refusal);
            let _ = write_all(client, &refusal.reply(policy).to_bytes()).await;
            return false;
        }
    };
    // A client's X-Upstream-Https-Proxy applies to CONNECT only (as in
    // Smokescreen HEAD); here it was checked by the ACL and is not forwarded.
    let proxy = shared
        .settings
        .upstream
        .for_target(&approved.target, false, None);
    // Reuse the kept-alive upstream only for the address the core chose,
    // only while nothing unasked-for waits on it (a late body would become
    // this request's response), and never a connection to an upstream
    // proxy (none is kept).
    let reusable = upstream.take().filter(|u| {
        proxy.is_none() && core_forward::may_reuse(u.addr == approved.addr, u.unread())
    });
    let dialled = match (reusable, proxy) {
        (Some(u), _) => Ok((u, approved, true)),
        (None, Some(p)) => via_proxy::dial_for(shared, approved, p).await,
        (None, None) => dial(shared, approved)
            .await
            .map(|(s, a)| (Upstream::new(s, a.addr), a, false)),
    };
    let (conn, approved, reused) = match dialled {
        Ok(ok) => ok,
        Err(refusal) => {
            log_refusal(facts, &refusal);
            let _ = write_all(client, &refusal.reply(policy).to_bytes()).await;
            return false;
        }
    };
    let dial = &forward::TcpDial;
    let limits = shared.settings.forward_limits();
    let mut result =
        forward::exchange(&limits, client, buf, &head, &approved, conn, reused, dial).await;
    if proxy.is_some() {
        result.upstream = None;
    }
    let mut record = decision::approved_record(facts, &approved);
    record.upstream_proxy = proxy.map(|p| p.authority.clone());
    if let Some(err) = &result.error {
        record.error = Some(err.clone());
        record.status_code = result.status_code;
        record.level = Level::Error;
    }
    emit(&record.to_line(logging::now()));
    *upstream = result.upstream;
    result.client_keep_alive
}
