//! The load driver: streams of prepared requests sent over HTTP/1.1 keep-alive connections
//! (one task per connection, one request at a time on each), closed-loop (as fast as the server
//! answers) or paced at a fixed rate (open loop: request `i` is due at `start + i / rate`, and
//! its latency counts from that instant, so a server that falls behind shows it).
//!
//! Several streams run at once on one current-thread runtime (the legitimate clients and an
//! attacker); each keeps its own counts and latencies.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::HOST;
use http::{HeaderName, HeaderValue, Method, Request, Uri};
use http_body_util::{BodyExt as _, Empty};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::BoxError;

/// A request still unanswered after this counts as a transport error (and its connection is
/// replaced).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The headers of one prepared request, beside `Host`; a name may repeat.
pub type Headers = Vec<(HeaderName, HeaderValue)>;

/// The `DPoP` header name.
pub fn dpop() -> HeaderName {
    HeaderName::from_static("dpop")
}

/// Indices of requests of another stream that were answered 2xx, for an attacker to replay.
#[derive(Default)]
pub struct Capture {
    queue: Mutex<VecDeque<usize>>,
    last: Mutex<Option<usize>>,
}

impl Capture {
    fn push(&self, i: usize) {
        if let Ok(mut q) = self.queue.lock() {
            q.push_back(i);
        }
    }

    /// The oldest answered request not yet replayed, else the last one replayed again.
    fn take(&self) -> Option<usize> {
        let next = self.queue.lock().ok().and_then(|mut q| q.pop_front());
        let mut last = self.last.lock().ok()?;
        if next.is_some() {
            *last = next;
        }
        *last
    }
}

/// Where a stream's requests come from.
#[derive(Clone)]
pub enum Source {
    /// `list[i]` for each `i` of the stream's range.
    List(Arc<Vec<Headers>>),
    /// The same headers every time.
    Same(Headers),
    /// Requests of another stream answered 2xx, sent again as they were.
    Replay {
        of: Arc<Vec<Headers>>,
        capture: Arc<Capture>,
    },
}

/// One stream of requests.
pub struct Stream {
    pub name: String,
    pub method: Method,
    pub uri: Uri,
    pub source: Source,
    /// Request numbers to send (for [`Source::List`], the indices into the list).
    pub range: Range<usize>,
    /// Requests per second; `None`: closed loop.
    pub rate: Option<f64>,
    pub connections: usize,
    /// Where to record the requests answered 2xx (for a replaying attacker).
    pub capture: Option<Arc<Capture>>,
}

impl Stream {
    /// The same stream over other request numbers.
    pub fn slice(&self, range: Range<usize>) -> Self {
        Self {
            name: self.name.clone(),
            method: self.method.clone(),
            uri: self.uri.clone(),
            source: self.source.clone(),
            range,
            rate: self.rate,
            connections: self.connections,
            capture: self.capture.clone(),
        }
    }

    /// A closed-loop stream over `list[range]`.
    pub fn closed(
        name: &str,
        uri: &'static str,
        list: Arc<Vec<Headers>>,
        range: Range<usize>,
        connections: usize,
    ) -> Self {
        Self {
            name: name.to_owned(),
            method: Method::GET,
            uri: Uri::from_static(uri),
            source: Source::List(list),
            range,
            rate: None,
            connections,
            capture: None,
        }
    }
}

/// What one stream saw.
#[derive(Debug, Default)]
pub struct Outcome {
    pub name: String,
    /// Requests answered (any status).
    pub answered: u64,
    pub ok: u64,
    /// Count per non-2xx status.
    pub statuses: BTreeMap<u16, u64>,
    /// Transport errors and timeouts.
    pub errors: u64,
    /// Sorted latencies in nanoseconds.
    pub latencies_ns: Vec<u64>,
    pub elapsed: Duration,
    /// A closed-loop stream used up its requests before the deadline.
    pub ran_out: bool,
    /// The first failure seen, for the report.
    pub first_failure: Option<String>,
}

impl Outcome {
    /// Adds the counts and latencies of another run of the same stream.
    pub fn merge(&mut self, other: Self) {
        self.answered += other.answered;
        self.ok += other.ok;
        for (s, n) in other.statuses {
            *self.statuses.entry(s).or_default() += n;
        }
        self.errors += other.errors;
        self.latencies_ns.extend_from_slice(&other.latencies_ns);
        self.latencies_ns.sort_unstable();
        self.elapsed += other.elapsed;
        self.ran_out |= other.ran_out;
        if self.first_failure.is_none() {
            self.first_failure = other.first_failure;
        }
    }

    /// Requests sent (answered or failed).
    pub fn sent(&self) -> u64 {
        self.answered + self.errors
    }

    /// Non-2xx answers.
    pub fn non2xx(&self) -> u64 {
        self.statuses.values().sum()
    }

    /// Requests per second.
    pub fn rps(&self) -> f64 {
        #[allow(clippy::cast_precision_loss)]
        let n = self.sent() as f64;
        n / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Percentage of the requests sent that were answered 2xx.
    pub fn success_pct(&self) -> f64 {
        #[allow(clippy::cast_precision_loss)]
        let pct = 100.0 * self.ok as f64 / self.sent().max(1) as f64;
        pct
    }

    /// Non-2xx statuses as `401:123/429:4` (`-` for none).
    pub fn statuses_label(&self) -> String {
        if self.statuses.is_empty() {
            return "-".into();
        }
        self.statuses
            .iter()
            .map(|(s, n)| format!("{s}:{n}"))
            .collect::<Vec<_>>()
            .join("/")
    }
}

/// Shared by the tasks of one stream.
struct State {
    stream: Stream,
    next: AtomicUsize,
    start: Instant,
    deadline: Instant,
    ran_out: AtomicBool,
    first_failure: Mutex<Option<String>>,
    record: bool,
}

impl State {
    fn note_failure(&self, what: String) {
        if let Ok(mut f) = self.first_failure.lock() {
            f.get_or_insert(what);
        }
    }

    fn request(&self, i: usize, host: &HeaderValue) -> Option<Request<Empty<Bytes>>> {
        let headers = match &self.stream.source {
            Source::List(list) => list.get(i)?,
            Source::Same(headers) => headers,
            Source::Replay { of, capture } => of.get(capture.take()?)?,
        };
        let mut req = Request::new(Empty::new());
        *req.method_mut() = self.stream.method.clone();
        *req.uri_mut() = self.stream.uri.clone();
        let h = req.headers_mut();
        h.insert(HOST, host.clone());
        for (name, value) in headers {
            h.append(name.clone(), value.clone());
        }
        Some(req)
    }

    /// When request `i` is due (paced streams).
    fn due(&self, i: usize) -> Option<Instant> {
        let rate = self.stream.rate?;
        #[allow(clippy::cast_precision_loss)]
        let k = i.saturating_sub(self.stream.range.start) as f64;
        Some(self.start + Duration::from_secs_f64(k / rate))
    }
}

#[derive(Default)]
struct TaskResult {
    latencies_ns: Vec<u64>,
    ok: u64,
    statuses: BTreeMap<u16, u64>,
    answered: u64,
    errors: u64,
    finished: Option<Instant>,
}

async fn connect(addr: SocketAddr) -> Result<SendRequest<Empty<Bytes>>, BoxError> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        // Errors surface on the sending side, where they are counted.
        let _ = conn.await;
    });
    Ok(sender)
}

type Answer = Result<(http::StatusCode, Option<HeaderValue>, Bytes), String>;

async fn send(sender: &mut SendRequest<Empty<Bytes>>, req: Request<Empty<Bytes>>) -> Answer {
    let exchange = async {
        sender.ready().await.map_err(|e| e.to_string())?;
        let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
        let status = resp.status();
        let www = if status.is_success() {
            None
        } else {
            resp.headers().get("www-authenticate").cloned()
        };
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?;
        Ok((status, www, body.to_bytes()))
    };
    match tokio::time::timeout(REQUEST_TIMEOUT, exchange).await {
        Ok(answer) => answer,
        Err(_) => Err(format!("no answer within {} s", REQUEST_TIMEOUT.as_secs())),
    }
}

async fn connection_task(
    addr: SocketAddr,
    host: HeaderValue,
    mut sender: SendRequest<Empty<Bytes>>,
    st: Arc<State>,
) -> TaskResult {
    let mut r = TaskResult::default();
    loop {
        let i = st.next.fetch_add(1, Ordering::Relaxed);
        if i >= st.stream.range.end {
            if Instant::now() < st.deadline {
                st.ran_out.store(true, Ordering::Relaxed);
            }
            break;
        }
        let due = st.due(i);
        match due {
            Some(due) if due >= st.deadline => break,
            Some(due) => tokio::time::sleep_until(due.into()).await,
            None if Instant::now() >= st.deadline => break,
            None => {}
        }
        let Some(req) = st.request(i, &host) else {
            // A replaying attacker with nothing captured yet: this slot is skipped.
            continue;
        };
        let start = due.unwrap_or_else(Instant::now);
        let outcome = send(&mut sender, req).await;
        let now = Instant::now();
        match outcome {
            Ok((status, www, body)) => {
                r.answered += 1;
                if st.record {
                    r.latencies_ns
                        .push(u64::try_from((now - start).as_nanos()).unwrap_or(u64::MAX));
                }
                if status.is_success() {
                    r.ok += 1;
                    if let Some(c) = &st.stream.capture {
                        c.push(i);
                    }
                } else {
                    *r.statuses.entry(status.as_u16()).or_default() += 1;
                    st.note_failure(format!(
                        "HTTP {status}, WWW-Authenticate: {www:?}, body: {:?}",
                        String::from_utf8_lossy(body.get(..body.len().min(200)).unwrap_or(&[]))
                    ));
                }
            }
            Err(e) => {
                r.errors += 1;
                st.note_failure(format!("transport error: {e}"));
                match connect(addr).await {
                    Ok(s) => sender = s,
                    Err(e) => {
                        st.note_failure(format!("reconnect failed: {e}"));
                        r.finished = Some(Instant::now());
                        return r;
                    }
                }
            }
        }
    }
    r.finished = Some(Instant::now());
    r
}

/// Runs `streams` at once for at most `max` (each also stops when its requests run out) and
/// returns what each saw, in the same order. `record`: keep latencies.
pub async fn run(
    addr: SocketAddr,
    streams: Vec<Stream>,
    max: Duration,
    record: bool,
) -> Result<Vec<Outcome>, BoxError> {
    let host = HeaderValue::try_from(addr.to_string()).map_err(|e| format!("Host header: {e}"))?;
    let mut senders = Vec::with_capacity(streams.len());
    for s in &streams {
        let mut conns = Vec::with_capacity(s.connections);
        for _ in 0..s.connections {
            conns.push(
                connect(addr)
                    .await
                    .map_err(|e| format!("cannot connect to the server at {addr}: {e}"))?,
            );
        }
        senders.push(conns);
    }
    let start = Instant::now();
    let deadline = start + max;
    let mut states = Vec::with_capacity(streams.len());
    let mut tasks = Vec::new();
    for (stream, conns) in streams.into_iter().zip(senders) {
        let st = Arc::new(State {
            next: AtomicUsize::new(stream.range.start),
            stream,
            start,
            deadline,
            ran_out: AtomicBool::new(false),
            first_failure: Mutex::new(None),
            record,
        });
        let handles: Vec<_> = conns
            .into_iter()
            .map(|s| tokio::spawn(connection_task(addr, host.clone(), s, Arc::clone(&st))))
            .collect();
        tasks.push(handles);
        states.push(st);
    }
    let mut outcomes = Vec::with_capacity(states.len());
    for (st, handles) in states.iter().zip(tasks) {
        let mut out = Outcome {
            name: st.stream.name.clone(),
            ..Outcome::default()
        };
        let mut finished = start;
        for h in handles {
            let r = h
                .await
                .map_err(|e| format!("a connection task failed: {e}"))?;
            finished = finished.max(r.finished.unwrap_or(start));
            out.latencies_ns.extend_from_slice(&r.latencies_ns);
            out.ok += r.ok;
            out.answered += r.answered;
            out.errors += r.errors;
            for (s, n) in r.statuses {
                *out.statuses.entry(s).or_default() += n;
            }
        }
        out.elapsed = finished - start;
        out.ran_out = st.ran_out.load(Ordering::Relaxed);
        out.first_failure = st.first_failure.lock().ok().and_then(|mut f| f.take());
        out.latencies_ns.sort_unstable();
        outcomes.push(out);
    }
    Ok(outcomes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_capture_hands_out_the_oldest_then_repeats_the_last() {
        let c = Capture::default();
        assert_eq!(c.take(), None);
        c.push(4);
        c.push(9);
        assert_eq!(c.take(), Some(4));
        assert_eq!(c.take(), Some(9));
        assert_eq!(c.take(), Some(9));
        c.push(11);
        assert_eq!(c.take(), Some(11));
    }
}
