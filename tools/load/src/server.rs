//! The processes around a run: the JWKS server (the stand-in authorization server) and the
//! resource server child, pinned with `taskset` and killed (by PID) at the end.

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use axum::routing::get;
use axum::Router;
use http::header::CONTENT_TYPE;

use crate::BoxError;

/// How long the server may take to print its `listening on` line.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(15);

/// An axum server publishing the JWKS at `/jwks`, on its own thread and current-thread runtime.
pub struct JwksServer {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl JwksServer {
    pub fn start(jwks: String) -> Result<Self, BoxError> {
        let (addr_tx, addr_rx) = mpsc::channel::<Result<SocketAddr, String>>();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("jwks".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = addr_tx.send(Err(format!("JWKS runtime: {e}")));
                        return;
                    }
                };
                rt.block_on(async move {
                    let listener = match tokio::net::TcpListener::bind("127.0.0.1:0").await {
                        Ok(l) => l,
                        Err(e) => {
                            let _ = addr_tx.send(Err(format!("JWKS bind: {e}")));
                            return;
                        }
                    };
                    let _ = addr_tx.send(listener.local_addr().map_err(|e| e.to_string()));
                    let app = Router::new().route(
                        "/jwks",
                        get(move || {
                            let body = jwks.clone();
                            async move { ([(CONTENT_TYPE, "application/json")], body) }
                        }),
                    );
                    let _ = axum::serve(listener, app)
                        .with_graceful_shutdown(async move {
                            let _ = stop_rx.await;
                        })
                        .await;
                });
            })?;
        let addr = addr_rx
            .recv_timeout(Duration::from_secs(10))
            .map_err(|e| format!("the JWKS server did not start: {e}"))??;
        Ok(Self {
            addr,
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }

    pub fn url(&self) -> String {
        format!("http://{}/jwks", self.addr)
    }

    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for JwksServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// The resource server, pinned with `taskset`; killed (by PID) when dropped.
pub struct ServerProcess {
    child: Option<Child>,
    pub addr: SocketAddr,
    pid: u32,
}

impl ServerProcess {
    /// Starts `bin` pinned to `core`, trusting `jwks_url` and `issuer`, with `env` on top of
    /// the settings every run uses.
    pub fn start(
        bin: &Path,
        core: usize,
        jwks_url: &str,
        issuer: &str,
        env: &[(&str, String)],
    ) -> Result<Self, BoxError> {
        let mut cmd = Command::new("taskset");
        cmd.arg("-c")
            .arg(core.to_string())
            .arg(bin)
            .env("DPOP_LISTEN", "127.0.0.1:0")
            .env("DPOP_JWKS_URL", jwks_url)
            .env("DPOP_ISSUER", issuer)
            .env_remove("DPOP_PUBLIC_URL")
            .env(
                "DPOP_AUDIENCE",
                tower_dpop::testing::TestIssuer::new().audience(),
            )
            .env_remove("DPOP_NONCE")
            .env_remove("DPOP_REDIS_URL")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (name, value) in env {
            cmd.env(name, value);
        }
        if std::env::var_os("RUST_LOG").is_none() {
            // Keep per-request logging out of the measurement unless asked for.
            cmd.env("RUST_LOG", "warn");
        }
        // `taskset` execs the server, so the child's PID is the server's.
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot start `taskset ... {}`: {e}", bin.display()))?;
        let pid = child.id();
        let stdout = child.stdout.take().expect("the child's stdout is piped");
        let mut this = Self {
            child: Some(child),
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            pid,
        };

        // Read stdout on a thread (it keeps draining after the `listening on` line).
        let (tx, rx) = mpsc::channel::<SocketAddr>();
        std::thread::Builder::new()
            .name("server-stdout".into())
            .spawn(move || {
                let mut tx = Some(tx);
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    if let Some(tx) = tx.take_if(|_| line.contains("listening on")) {
                        let addr = line
                            .rsplit("http://")
                            .next()
                            .and_then(|a| a.trim().trim_end_matches('/').parse().ok());
                        match addr {
                            Some(a) => {
                                let _ = tx.send(a);
                            }
                            None => eprintln!("load: cannot parse the server's line {line:?}"),
                        }
                    } else {
                        println!("server: {line}");
                    }
                }
            })?;
        let started = Instant::now();
        loop {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(addr) => {
                    this.addr = addr;
                    return Ok(this);
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = this.child.as_mut().and_then(|c| c.wait().ok());
                    return Err(format!(
                        "the server closed its stdout without a `listening on` line \
                         (exit status {status:?})"
                    )
                    .into());
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if let Some(status) = this
                        .child
                        .as_mut()
                        .and_then(|c| c.try_wait().ok())
                        .flatten()
                    {
                        return Err(format!("the server exited during start-up: {status}").into());
                    }
                    if started.elapsed() > STARTUP_TIMEOUT {
                        return Err(format!(
                            "the server printed no `listening on` line within {} s",
                            STARTUP_TIMEOUT.as_secs()
                        )
                        .into());
                    }
                }
            }
        }
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    pub fn stop(mut self) {
        self.kill();
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            if let Err(e) = child.kill() {
                eprintln!("load: cannot kill the server (pid {}): {e}", self.pid);
            }
            let _ = child.wait();
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
