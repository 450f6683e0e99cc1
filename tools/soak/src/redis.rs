//! A `redis-server` child on a free 127.0.0.1 port, killed with SIGKILL and restarted on the
//! same port and data directory.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// What survives a kill: with `Aof`, every acknowledged `SET` is in the append-only file
/// (`appendfsync always`) and is loaded again on restart; with `None`, a restart starts empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Persistence {
    Aof,
    None,
}

pub struct RedisChild {
    port: u16,
    dir: PathBuf,
    persistence: Persistence,
    child: Option<Child>,
}

impl RedisChild {
    /// Starts Redis on a free port and waits until it answers `PING`.
    pub fn start(persistence: Persistence) -> Result<Self, String> {
        let port = free_port()?;
        let base = if std::path::Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        let dir = base.join(format!("tower-dpop-soak-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| format!("redis dir {}: {e}", dir.display()))?;
        let mut redis = Self {
            port,
            dir,
            persistence,
            child: None,
        };
        redis.spawn()?;
        redis.wait_ready(Duration::from_secs(10))?;
        Ok(redis)
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Spawns the server (it is not running).
    pub fn spawn(&mut self) -> Result<(), String> {
        let mut cmd = Command::new("redis-server");
        cmd.arg("--bind")
            .arg("127.0.0.1")
            .arg("--port")
            .arg(self.port.to_string())
            .arg("--save")
            .arg("")
            .arg("--dir")
            .arg(&self.dir)
            .arg("--maxmemory-policy")
            .arg("noeviction")
            .arg("--daemonize")
            .arg("no");
        match self.persistence {
            Persistence::Aof => cmd
                .arg("--appendonly")
                .arg("yes")
                .arg("--appendfsync")
                .arg("always"),
            Persistence::None => cmd.arg("--appendonly").arg("no"),
        };
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start redis-server: {e}"))?;
        self.child = Some(child);
        Ok(())
    }

    /// SIGKILL, and waits until the process is gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Waits until the server answers `PING` with `PONG` (not `LOADING`).
    pub fn wait_ready(&self, within: Duration) -> Result<(), String> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if self.ping() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        Err(format!("redis on port {} did not answer PING", self.port))
    }

    fn ping(&self) -> bool {
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(100)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_millis(200)));
        if s.write_all(b"PING\r\n").is_err() {
            return false;
        }
        let mut buf = [0u8; 16];
        matches!(s.read(&mut buf), Ok(n) if buf.get(..n).is_some_and(|b| b.starts_with(b"+PONG")))
    }
}

impl Drop for RedisChild {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn free_port() -> Result<u16, String> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("no free port: {e}"))?;
    l.local_addr()
        .map(|a| a.port())
        .map_err(|e| format!("no free port: {e}"))
}
