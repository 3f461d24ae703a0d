//! The two-step verdict that ties the core together.
//!
//! ```text
//! before_dns(policy, request)          -> Pending (resolve or use the literal) | Refusal
//! after_dns(policy, pending, answers)  -> Approved (the one address to dial)   | Refusal
//! dial_failed(approved, error)         -> Refusal (502/504, logged allow=true with error)
//! ```
//! The shell carries out each step (resolve, dial) and writes the record the
//! core builds from the outcome. Only addresses that `after_dns` returned are
//! ever dialled, so DNS rebinding between check and connect is impossible.

use std::net::{IpAddr, SocketAddr};

use crate::core::acl::{self, Acl};
use crate::core::addr::{AddressPolicy, Rule, SelfEndpoints};
use crate::core::auth::{determine_role_for, AuthFailure, AuthMode, ClientCert, Role};
use crate::core::head::{Headers, RequestForm, RequestHead};
use crate::core::lookup::LookupError;
use crate::core::record::{Client, DecisionRecord, Level, ProxyType};
use crate::core::reply::{denied_message, Reply};
use crate::core::target::{Host, Target};
use crate::core::time::Timestamp;
use crate::core::upstream::ProxyUrl;

/// Decision text for address denials (Smokescreen's).
pub const ADDRESS_DENIED_REASON: &str = "destination address was denied by rule, see error";
/// Decision text for role failures (Smokescreen's).
pub const ROLE_UNKNOWN_REASON: &str = "Client role cannot be determined";
/// The header a client names its next proxy in (Smokescreen HEAD).
pub const UPSTREAM_PROXY_HEADER: &str = "x-upstream-https-proxy";

/// The request field whose value the decision line logs as `trace_id`.
pub const TRACE_ID_HEADER: &str = "x-smokescreen-trace-id";

/// Smokescreen HEAD's text for an `X-Upstream-Https-Proxy` that is not a URL.
pub const INVALID_PROXY_HEADER_REASON: &str = "proxy header contains invalid URL. The correct format is https://[username:password@]my.proxy.srv:12345";

/// Everything the core needs to decide, loaded once and swapped whole on reload.
#[derive(Clone, Debug)]
pub struct Policy {
    pub auth: AuthMode,
    /// `None`: no ACL configured; every host passes the ACL step.
    pub acl: Option<Acl>,
    pub addresses: AddressPolicy,
    /// `--additional-error-message-on-deny`.
    pub deny_message_extra: Option<String>,
    /// `--allow-missing-role`: a request with no credentials at all gets the
    /// empty role (the ACL's default rule) instead of a 407. Wrong
    /// credentials are still refused.
    pub allow_missing_role: bool,
}

/// What the shell must look up before the second step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lookup {
    /// The target was an address literal: no DNS.
    Literal(IpAddr),
    /// Resolve this normalised name.
    Name(String),
}

/// The facts common to every outcome, carried into the log record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdicts {
    pub proxy_type: ProxyType,
    pub requested_host: String,
    pub role: String,
    pub project: String,
    pub acl_allowed: bool,
    pub enforce_would_deny: bool,
    pub reason: String,
    /// The ACL step's reason, once it ran (tools name the rule from it).
    pub acl_reason: Option<acl::Reason>,
    /// The ACL's default rule decided (the role had no rule of its own).
    pub default_rule: bool,
    /// The next proxy the client named in `X-Upstream-Https-Proxy`, once
    /// the rule's `allowed_external_proxies` allowed it.
    pub requested_proxy: Option<ProxyUrl>,
    /// A CONNECT whose tunnel is opened and inspected (`mitm_domains`).
    /// Never set for `http://` requests: a secret is not sent in clear text.
    pub intercept: Option<std::sync::Arc<crate::core::mitm::Interception>>,
}

impl Verdicts {
    /// What is known before the ACL step: the request's kind and host, and
    /// the role once determined.
    fn before_acl(proxy_type: ProxyType, target: &Target, role: String) -> Verdicts {
        Verdicts {
            proxy_type,
            requested_host: target.requested.clone(),
            role,
            project: String::new(),
            acl_allowed: false,
            enforce_would_deny: false,
            reason: String::new(),
            acl_reason: None,
            default_rule: false,
            requested_proxy: None,
            intercept: None,
        }
    }
}

/// Passed the role and ACL checks; waiting for addresses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pending {
    pub target: Target,
    pub lookup: Lookup,
    pub verdicts: Verdicts,
}

/// Cleared to dial exactly `addr`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Approved {
    pub target: Target,
    pub addr: SocketAddr,
    /// Resolved addresses that were refused, and by which rule (never dialled).
    pub rejected: Vec<(IpAddr, Rule)>,
    pub verdicts: Verdicts,
}

/// Why a request is not going through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefusalKind {
    /// No role: 407, with the specific cause (for our log only).
    Role(AuthFailure),
    /// The ACL said no: 403.
    Acl,
    /// Every address was denied: 403.
    Address,
    /// The name did not resolve: 502.
    Resolve,
    /// The dial failed: 502.
    Connect,
    /// The dial timed out: 504.
    ConnectTimeout,
}

/// A refusal: the reply to send and what to log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub kind: RefusalKind,
    pub verdicts: Verdicts,
    /// For the log's `error` field.
    pub error: Option<String>,
    /// The dial target when the refusal happened after approval.
    pub dst: Option<SocketAddr>,
    /// The message for the body and `X-Smokescreen-Error`.
    pub message: String,
    pub rejected: Vec<(IpAddr, Rule)>,
}

impl Refusal {
    pub fn status(&self) -> u16 {
        match self.kind {
            RefusalKind::Role(_) => 407,
            RefusalKind::Acl | RefusalKind::Address => 403,
            RefusalKind::Resolve | RefusalKind::Connect => 502,
            RefusalKind::ConnectTimeout => 504,
        }
    }

    /// Policy denials are warnings; failures of an allowed request are errors.
    pub fn level(&self) -> Level {
        match self.kind {
            RefusalKind::Role(_) | RefusalKind::Acl | RefusalKind::Address => Level::Warning,
            RefusalKind::Resolve | RefusalKind::Connect | RefusalKind::ConnectTimeout => {
                Level::Error
            }
        }
    }

    pub fn reply(&self, policy: &Policy) -> Reply {
        let extra = match self.kind {
            RefusalKind::Role(_) | RefusalKind::Acl | RefusalKind::Address => {
                policy.deny_message_extra.as_deref()
            }
            _ => None,
        };
        Reply::refusal(self.status(), &self.message, extra)
    }
}

/// The target of a proxy request, or `None` for origin-form.
pub fn request_target(head: &RequestHead) -> Option<(&Target, ProxyType)> {
    match &head.form {
        RequestForm::Connect(t) => Some((t, ProxyType::Connect)),
        RequestForm::Absolute(u) => Some((&u.target, ProxyType::Http)),
        RequestForm::Origin(_) => None,
    }
}

/// Step one: role, then ACL. Origin-form requests must be answered by the
/// shell with [`crate::core::reply::non_proxy_request`] before calling this.
pub fn before_dns(
    policy: &Policy,
    target: &Target,
    proxy_type: ProxyType,
    headers: &Headers,
) -> Result<Pending, Box<Refusal>> {
    before_dns_for(policy, target, proxy_type, headers, None)
}

/// [`before_dns`] for a connection that may carry a verified client
/// certificate (mTLS): with [`AuthMode::ClientCertificate`] its common
/// name is the role.
pub fn before_dns_for(
    policy: &Policy,
    target: &Target,
    proxy_type: ProxyType,
    headers: &Headers,
    cert: Option<&ClientCert>,
) -> Result<Pending, Box<Refusal>> {
    let mut verdicts = Verdicts::before_acl(proxy_type, target, String::new());
    let role = match determine_role_for(headers, &policy.auth, cert) {
        Ok(role) => role,
        Err(AuthFailure::Missing) if policy.allow_missing_role => Role(String::new()),
        Err(failure) => {
            verdicts.reason = ROLE_UNKNOWN_REASON.to_string();
            return Err(Box::new(Refusal {
                kind: RefusalKind::Role(failure),
                message: denied_message(&target.requested, ROLE_UNKNOWN_REASON),
                verdicts,
                error: Some(failure.to_string()),
                dst: None,
                rejected: Vec::new(),
            }));
        }
    };
    verdicts.role = role.0;
    let requested_proxy = match headers.get(UPSTREAM_PROXY_HEADER) {
        None | Some([]) => None,
        Some(raw) => {
            let raw = String::from_utf8_lossy(raw);
            match ProxyUrl::parse_header(&raw) {
                Ok(p) => Some(p),
                Err(_) => {
                    verdicts.reason = INVALID_PROXY_HEADER_REASON.to_string();
                    return Err(Box::new(Refusal {
                        kind: RefusalKind::Acl,
                        message: denied_message(&target.requested, INVALID_PROXY_HEADER_REASON),
                        verdicts,
                        error: None,
                        dst: None,
                        rejected: Vec::new(),
                    }));
                }
            }
        }
    };
    acl_step(policy, target, verdicts, requested_proxy)
}

/// [`before_dns`] for a role that is already known: the ACL step alone.
/// The policy tools judge logged or typed requests through it, so they
/// share the proxy's decision path from the ACL on.
pub fn before_dns_as(
    policy: &Policy,
    target: &Target,
    proxy_type: ProxyType,
    role: Role,
) -> Result<Pending, Box<Refusal>> {
    let verdicts = Verdicts::before_acl(proxy_type, target, role.0);
    acl_step(policy, target, verdicts, None)
}

/// The ACL half of step one, for a role already in `verdicts` (and the
/// next proxy the client asked for, if any).
fn acl_step(
    policy: &Policy,
    target: &Target,
    mut verdicts: Verdicts,
    requested_proxy: Option<ProxyUrl>,
) -> Result<Pending, Box<Refusal>> {
    let host = target.host.acl_str();
    let proxy_host = requested_proxy.as_ref().map(|p| p.host.as_str());
    let decision = match &policy.acl {
        Some(acl) => acl.decide_with_proxy(&verdicts.role, &host, proxy_host),
        None => acl::Decision::not_configured(),
    };
    verdicts.requested_proxy = requested_proxy;
    verdicts.project = decision.project.to_string();
    verdicts.reason = decision.reason.to_string();
    verdicts.acl_reason = Some(decision.reason);
    verdicts.enforce_would_deny = decision.enforce_would_deny();
    verdicts.acl_allowed = decision.allows();
    verdicts.default_rule = decision.default_rule;
    if verdicts.proxy_type == ProxyType::Connect {
        verdicts.intercept = decision.intercept.clone();
    }
    if !decision.allows() {
        return Err(Box::new(Refusal {
            kind: RefusalKind::Acl,
            message: denied_message(&target.requested, &verdicts.reason),
            verdicts,
            error: None,
            dst: None,
            rejected: Vec::new(),
        }));
    }
    let lookup = match &target.host {
        Host::Ip(ip) => Lookup::Literal(*ip),
        Host::Name(name) => Lookup::Name(name.clone()),
    };
    Ok(Pending {
        target: target.clone(),
        lookup,
        verdicts,
    })
}

/// Between the lookup and step two: every name the resolver's CNAME chain
/// led through (`aliases`, from [`crate::core::dns::Answer`]) is matched
/// against the ACL's global deny list, as the asked name was in step one;
/// `cnameint.test CNAME db.internal` is refused like `db.internal` itself.
pub fn aliases_checked(
    policy: &Policy,
    pending: Pending,
    aliases: &[String],
) -> Result<Pending, Box<Refusal>> {
    let Some(acl) = &policy.acl else {
        return Ok(pending);
    };
    let Some(alias) = aliases.iter().find(|a| acl.globally_denied(a)) else {
        return Ok(pending);
    };
    let Pending {
        target,
        mut verdicts,
        ..
    } = pending;
    let reason = acl::Reason::GlobalDenyList.to_string();
    verdicts.acl_allowed = false;
    verdicts.enforce_would_deny = true;
    verdicts.reason = reason.clone();
    Err(Box::new(Refusal {
        kind: RefusalKind::Acl,
        message: denied_message(&target.requested, &reason),
        verdicts,
        error: Some(format!(
            "{} is an alias (CNAME) of {alias}, which matched rule in global deny list",
            target.requested
        )),
        dst: None,
        rejected: Vec::new(),
    }))
}

/// Whether a request with this step-one outcome spends the request rate
/// and concurrency budget. Only requests with a role do: a 407 (no or
/// wrong credentials) is answered at once and costs the limits nothing,
/// so unauthenticated noise cannot starve authenticated clients.
pub fn spends_request_budget(first: &Result<Pending, Box<Refusal>>) -> bool {
    !matches!(first, Err(r) if matches!(r.kind, RefusalKind::Role(_)))
}

/// Step two: classify every answer and pick the first allowed address.
/// `answers` is the literal for [`Lookup::Literal`], or the resolver's answer
/// (`Err` carries the resolver's error text).
pub fn after_dns(
    policy: &Policy,
    pending: Pending,
    answers: Result<&[IpAddr], &LookupError>,
    me: &SelfEndpoints,
) -> Result<Approved, Box<Refusal>> {
    let Pending {
        target, verdicts, ..
    } = pending;
    let answers = match answers {
        Ok([]) => Err("no addresses found".to_string()),
        Ok(a) => Ok(a),
        Err(e) => Err(e.to_string()),
    };
    let answers = match answers {
        Ok(a) => a,
        Err(e) => {
            let error = format!("Failed to resolve remote hostname: {e}");
            return Err(Box::new(Refusal {
                kind: RefusalKind::Resolve,
                message: error.clone(),
                verdicts,
                error: Some(error),
                dst: None,
                rejected: Vec::new(),
            }));
        }
    };
    let mut rejected = Vec::new();
    for ip in answers {
        let addr = SocketAddr::new(*ip, target.port);
        let rule = policy.addresses.classify(addr, me);
        if rule.allows() {
            return Ok(Approved {
                target,
                addr,
                rejected,
                verdicts,
            });
        }
        rejected.push((*ip, rule));
    }
    // Every answer was denied: name the first, as Smokescreen does.
    let (ip, rule) = rejected
        .first()
        .copied()
        .unwrap_or((IpAddr::from([0, 0, 0, 0]), Rule::DenyNotGlobalUnicast));
    let error = format!("The destination address ({ip}) was denied by rule '{rule}'");
    let mut verdicts = verdicts;
    verdicts.acl_allowed = false;
    verdicts.enforce_would_deny = true;
    verdicts.reason = ADDRESS_DENIED_REASON.to_string();
    Err(Box::new(Refusal {
        kind: RefusalKind::Address,
        message: denied_message(
            &target.requested,
            &format!("{error}. {ADDRESS_DENIED_REASON}"),
        ),
        verdicts,
        error: Some(error),
        dst: None,
        rejected,
    }))
}

/// The approved dial failed (`timed_out`: the connect timeout expired).
pub fn dial_failed(approved: Approved, error: &str, timed_out: bool) -> Refusal {
    let (kind, message) = if timed_out {
        (
            RefusalKind::ConnectTimeout,
            format!("Timed out connecting to remote host: {error}"),
        )
    } else {
        (
            RefusalKind::Connect,
            format!("Failed to connect to remote host: {error}"),
        )
    };
    Refusal {
        kind,
        error: Some(message.clone()),
        message,
        verdicts: approved.verdicts,
        dst: Some(approved.addr),
        rejected: approved.rejected,
    }
}

/// Per-request facts the shell supplies for the log record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestFacts {
    pub id: String,
    pub client: Client,
    pub start_time: Timestamp,
    pub trace_id: String,
    pub content_length: u64,
}

impl RequestFacts {
    /// Trace id and content length from the request headers.
    pub fn from_headers(
        id: String,
        client: Client,
        start_time: Timestamp,
        headers: &Headers,
    ) -> RequestFacts {
        let text = |name: &str| {
            headers
                .get(name)
                .map(|v| String::from_utf8_lossy(v).into_owned())
                .unwrap_or_default()
        };
        RequestFacts {
            id,
            client,
            start_time,
            trace_id: text(TRACE_ID_HEADER),
            content_length: text("content-length").trim().parse().unwrap_or(0),
        }
    }
}

fn record(facts: &RequestFacts, v: &Verdicts) -> DecisionRecord {
    DecisionRecord {
        id: facts.id.clone(),
        proxy_type: v.proxy_type,
        requested_host: v.requested_host.clone(),
        client: facts.client.clone(),
        start_time: facts.start_time,
        trace_id: facts.trace_id.clone(),
        role: v.role.clone(),
        project: v.project.clone(),
        allow: v.acl_allowed,
        enforce_would_deny: v.enforce_would_deny,
        decision_reason: v.reason.clone(),
        dst: None,
        error: None,
        content_length: facts.content_length,
        status_code: None,
        upstream_proxy: None,
        level: Level::Info,
        rejected: Vec::new(),
    }
}

/// The record for a request that was dialled successfully.
pub fn approved_record(facts: &RequestFacts, approved: &Approved) -> DecisionRecord {
    let mut r = record(facts, &approved.verdicts);
    r.dst = Some(approved.addr);
    r.rejected = approved.rejected.clone();
    r
}

/// The record for a refused or failed request.
pub fn refusal_record(facts: &RequestFacts, refusal: &Refusal) -> DecisionRecord {
    let mut r = record(facts, &refusal.verdicts);
    r.dst = refusal.dst;
    r.error = refusal.error.clone();
    r.status_code = Some(refusal.status());
    r.level = refusal.level();
    r.rejected = refusal.rejected.clone();
    r
}
