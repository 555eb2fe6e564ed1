//! A fault-injecting HTTP/1.1 proxy between walg and a real S3 server on loopback.
//!
//! Each client connection gets its own upstream connection; requests and answers are passed
//! through byte for byte (the Host header stays the proxy's, which is what the client signed,
//! and s3s-fs checks the signature against the headers it receives). Request bodies are framed
//! by Content-Length; answers by Content-Length or chunked encoding. Each request draws a
//! [`Fault`] from the [`Plan`]: a seeded rate (reproducible), every request, or the n-th one.
//!
//! Faults:
//! - `Status503`: answers 503 `ServiceUnavailable` itself; the request never reaches S3.
//! - `ResetBeforeAnswer`: S3 handles the request, the client gets a TCP reset instead of the
//!   answer (an upload stored without the client knowing).
//! - `ResetMidBody`: the answer's head and half its body, then a reset (bodyless answers: a
//!   reset before the answer).
//! - `Stall`: the request is swallowed; no answer ever comes.
//! - `StallMidBody`: the head and half the body, then silence (bodyless answers: silence
//!   after S3 handled the request).
//! - `SlowBody`: the whole answer, in 64 KiB pieces 50 ms apart (slow but alive).
//!
//! The proxy keeps a log of the requests it saw (`METHOD /path` and any `Range` header).

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    Status503,
    ResetBeforeAnswer,
    ResetMidBody,
    Stall,
    StallMidBody,
    SlowBody,
}

impl Fault {
    pub const ALL: [Fault; 6] = [
        Fault::Status503,
        Fault::ResetBeforeAnswer,
        Fault::ResetMidBody,
        Fault::Stall,
        Fault::StallMidBody,
        Fault::SlowBody,
    ];
}

/// Which requests get which fault.
#[derive(Debug, Clone)]
pub enum Plan {
    /// Request number `n` (0-based) is faulty with probability `percent`%, the kind drawn from
    /// `kinds`; both decided by `seed` and `n` alone.
    Rate {
        percent: u64,
        seed: u64,
        kinds: Vec<Fault>,
    },
    /// Every request.
    Always(Fault),
    /// Only request number `n` (0-based).
    Nth(u64, Fault),
}

impl Plan {
    fn fault_for(&self, n: u64) -> Option<Fault> {
        match self {
            Plan::Always(fault) => Some(*fault),
            Plan::Nth(at, fault) => (n == *at).then_some(*fault),
            Plan::Rate {
                percent,
                seed,
                kinds,
            } => {
                let roll = splitmix(seed ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15));
                let pick = splitmix(roll);
                (roll % 100 < *percent && !kinds.is_empty())
                    .then(|| kinds[(pick % kinds.len() as u64) as usize])
            }
        }
    }
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

#[derive(Default)]
struct Counters {
    requests: AtomicU64,
    faults: AtomicU64,
    log: Mutex<Vec<String>>,
}

/// A running proxy; stopped (every connection dropped) on drop.
pub struct FaultProxy {
    port: u16,
    counters: Arc<Counters>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FaultProxy {
    /// Listens on a free loopback port and forwards to `127.0.0.1:<upstream_port>`.
    pub fn start(upstream_port: u16, plan: Plan) -> FaultProxy {
        let std_listener =
            std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("binding the fault proxy");
        std_listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let port = std_listener.local_addr().expect("proxy address").port();
        let counters = Arc::new(Counters::default());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let shared = Arc::clone(&counters);
        let upstream = SocketAddr::from((Ipv4Addr::LOCALHOST, upstream_port));
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("proxy runtime");
            runtime.block_on(async move {
                let listener = TcpListener::from_std(std_listener).expect("tokio listener");
                let plan = Arc::new(plan);
                let accept = async {
                    loop {
                        let Ok((client, _)) = listener.accept().await else {
                            continue;
                        };
                        let (plan, counters) = (Arc::clone(&plan), Arc::clone(&shared));
                        tokio::spawn(async move {
                            let _ = serve(client, upstream, &plan, &counters).await;
                        });
                    }
                };
                tokio::select! {
                    _ = accept => {}
                    _ = stopped => {}
                }
            });
            // Dropping the runtime drops every connection task.
        });
        FaultProxy {
            port,
            counters,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Requests seen so far.
    pub fn requests(&self) -> u64 {
        self.counters.requests.load(Ordering::SeqCst)
    }

    /// Faults injected so far.
    pub fn faults(&self) -> u64 {
        self.counters.faults.load(Ordering::SeqCst)
    }

    /// The requests seen so far: `METHOD /path?query`, then ` range=<Range>` if there was one.
    pub fn log(&self) -> Vec<String> {
        self.counters
            .log
            .lock()
            .map(|l| l.clone())
            .unwrap_or_default()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

type Io = std::io::Result<()>;

/// One client connection: requests in order, each answered (or not) before the next.
async fn serve(client: TcpStream, upstream: SocketAddr, plan: &Plan, counters: &Counters) -> Io {
    let (client_read, mut client_write) = client.into_split();
    let mut client_read = BufReader::new(client_read);
    let mut server: Option<(BufReader<tokio::net::tcp::OwnedReadHalf>, _)> = None;
    loop {
        let Some(head) = read_head(&mut client_read).await? else {
            return Ok(());
        };
        let mut request = head.clone();
        let length = content_length(&head).unwrap_or(0);
        let mut body = vec![0u8; length];
        client_read.read_exact(&mut body).await?;
        request.extend_from_slice(&body);

        let n = counters.requests.fetch_add(1, Ordering::SeqCst);
        let line = String::from_utf8_lossy(&head);
        let mut entry: String = line
            .lines()
            .next()
            .unwrap_or("")
            .rsplit_once(' ')
            .map_or("", |(start, _)| start)
            .to_string();
        if let Some(range) = header(&head, "range") {
            entry.push_str(&format!(" range={range}"));
        }
        if let Ok(mut log) = counters.log.lock() {
            log.push(entry);
        }
        let fault = plan.fault_for(n);
        if fault.is_some() {
            counters.faults.fetch_add(1, Ordering::SeqCst);
        }
        match fault {
            Some(Fault::Status503) => {
                let xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>ServiceUnavailable</Code><Message>injected fault</Message></Error>";
                let answer = format!(
                    "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{xml}",
                    xml.len()
                );
                client_write.write_all(answer.as_bytes()).await?;
                client_write.shutdown().await?;
                return Ok(());
            }
            Some(Fault::Stall) => return hold(client_read).await,
            _ => {}
        }
        if server.is_none() {
            let stream = TcpStream::connect(upstream).await?;
            let (r, w) = stream.into_split();
            server = Some((BufReader::new(r), w));
        }
        let Some((server_read, server_write)) = server.as_mut() else {
            return Ok(());
        };
        server_write.write_all(&request).await?;
        let answer_head = read_head(server_read)
            .await?
            .ok_or_else(|| std::io::Error::other("upstream closed"))?;
        let framing = framing(&answer_head, &head);
        if fault == Some(Fault::ResetBeforeAnswer)
            || (fault == Some(Fault::ResetMidBody) && framing.is_bodyless())
        {
            return reset(client_write.reunite(client_read.into_inner()));
        }
        if fault == Some(Fault::StallMidBody) && framing.is_bodyless() {
            return hold(client_read).await;
        }
        client_write.write_all(&answer_head).await?;
        match fault {
            Some(Fault::ResetMidBody) => {
                copy_half(server_read, &mut client_write, &framing).await?;
                return reset(client_write.reunite(client_read.into_inner()));
            }
            Some(Fault::StallMidBody) => {
                copy_half(server_read, &mut client_write, &framing).await?;
                return hold(client_read).await;
            }
            Some(Fault::SlowBody) => {
                copy_body(server_read, &mut client_write, &framing, true).await?
            }
            _ => copy_body(server_read, &mut client_write, &framing, false).await?,
        }
        if header(&answer_head, "connection").is_some_and(|v| v.eq_ignore_ascii_case("close")) {
            client_write.shutdown().await?;
            return Ok(());
        }
    }
}

/// Keeps the connection open, saying nothing, until the client gives up.
async fn hold(mut client: impl AsyncRead + Unpin) -> Io {
    let mut sink = [0u8; 1024];
    while client.read(&mut sink).await? > 0 {}
    Ok(())
}

/// Closes with a TCP reset (linger 0).
fn reset(stream: Result<TcpStream, tokio::net::tcp::ReuniteError>) -> Io {
    let stream = stream.map_err(std::io::Error::other)?;
    stream.set_zero_linger()?;
    drop(stream);
    Ok(())
}

/// The head of a message (through the empty line), or `None` at a clean end of stream.
async fn read_head(
    reader: &mut (impl AsyncBufReadExt + Unpin),
) -> std::io::Result<Option<Vec<u8>>> {
    let mut head = Vec::new();
    loop {
        let before = head.len();
        let n = reader.read_until(b'\n', &mut head).await?;
        if n == 0 {
            return if head.is_empty() {
                Ok(None)
            } else {
                Err(std::io::Error::other("message head cut short"))
            };
        }
        let line = &head[before..];
        if line == b"\r\n" || line == b"\n" {
            return Ok(Some(head));
        }
        if head.len() > 64 * 1024 {
            return Err(std::io::Error::other("message head too long"));
        }
    }
}

fn header(head: &[u8], name: &str) -> Option<String> {
    let text = String::from_utf8_lossy(head);
    text.lines().skip(1).find_map(|line| {
        let (k, v) = line.split_once(':')?;
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().to_string())
    })
}

fn content_length(head: &[u8]) -> Option<usize> {
    header(head, "content-length").and_then(|v| v.parse().ok())
}

/// How an answer's body is delimited.
enum Framing {
    Length(usize),
    Chunked,
}

impl Framing {
    fn is_bodyless(&self) -> bool {
        matches!(self, Framing::Length(0))
    }
}

fn framing(answer: &[u8], request: &[u8]) -> Framing {
    let status = String::from_utf8_lossy(answer)
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .unwrap_or(0);
    if request.starts_with(b"HEAD ") || status == 204 || status == 304 {
        return Framing::Length(0);
    }
    if header(answer, "transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        return Framing::Chunked;
    }
    Framing::Length(content_length(answer).unwrap_or(0))
}

/// Copies the body; `slow`: in 64 KiB pieces 50 ms apart.
async fn copy_body(
    from: &mut (impl AsyncBufReadExt + Unpin),
    to: &mut (impl AsyncWrite + Unpin),
    framing: &Framing,
    slow: bool,
) -> Io {
    match framing {
        Framing::Length(n) => copy_exact(from, to, *n, slow).await,
        Framing::Chunked => loop {
            let mut line = Vec::new();
            from.read_until(b'\n', &mut line).await?;
            to.write_all(&line).await?;
            let text = String::from_utf8_lossy(&line);
            let size_text = text.trim().split(';').next().unwrap_or("").to_string();
            let size = usize::from_str_radix(&size_text, 16)
                .map_err(|_| std::io::Error::other("bad chunk size"))?;
            if size == 0 {
                // Trailers, then the empty line.
                while let Some(trailer) = read_line(from).await? {
                    to.write_all(&trailer).await?;
                    if trailer == b"\r\n" {
                        break;
                    }
                }
                return Ok(());
            }
            copy_exact(from, to, size + 2, slow).await?;
        },
    }
}

async fn read_line(from: &mut (impl AsyncBufReadExt + Unpin)) -> std::io::Result<Option<Vec<u8>>> {
    let mut line = Vec::new();
    Ok((from.read_until(b'\n', &mut line).await? > 0).then_some(line))
}

/// Copies half of a body (at least one byte), then flushes.
async fn copy_half(
    from: &mut (impl AsyncBufReadExt + Unpin),
    to: &mut (impl AsyncWrite + Unpin),
    framing: &Framing,
) -> Io {
    match framing {
        Framing::Length(n) => copy_exact(from, to, (n / 2).max(1).min(*n), false).await?,
        // Half of the first chunk line is enough to leave the body unfinished.
        Framing::Chunked => {
            let buffered = from.fill_buf().await?;
            let take = (buffered.len() / 2).max(1).min(buffered.len());
            to.write_all(&buffered[..take]).await?;
        }
    }
    to.flush().await
}

async fn copy_exact(
    from: &mut (impl AsyncRead + Unpin),
    to: &mut (impl AsyncWrite + Unpin),
    mut n: usize,
    slow: bool,
) -> Io {
    let mut buf = vec![0u8; 64 * 1024];
    while n > 0 {
        let want = n.min(buf.len());
        let got = from.read(&mut buf[..want]).await?;
        if got == 0 {
            return Err(std::io::Error::other("upstream body cut short"));
        }
        to.write_all(&buf[..got]).await?;
        n -= got;
        if slow {
            to.flush().await?;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    to.flush().await
}
