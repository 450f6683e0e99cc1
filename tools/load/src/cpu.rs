//! CPU accounting from `/proc`: CPU time of a process (all its threads), how busy a core was,
//! and which cores a process may run on.

/// Nanoseconds of CPU time used so far by all threads of `pid` (`"self"` for this process),
/// summed from `/proc/<pid>/task/*/schedstat`.
pub fn cpu_ns(pid: &str) -> Option<u64> {
    let dir = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    let mut total = 0u64;
    let mut any = false;
    for entry in dir.flatten() {
        let Ok(s) = std::fs::read_to_string(entry.path().join("schedstat")) else {
            continue;
        };
        if let Some(ns) = s
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<u64>().ok())
        {
            total += ns;
            any = true;
        }
    }
    any.then_some(total)
}

/// `(busy, total)` jiffies of one core, from `/proc/stat`.
pub fn core_times(core: usize) -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let prefix = format!("cpu{core} ");
    let line = stat.lines().find(|l| l.starts_with(&prefix))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal guest guest_nice; guest time is already
    // counted in user and nice.
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    Some((total.saturating_sub(idle), total))
}

/// Percentage of the time a core was busy between two [`core_times`] readings.
pub fn busy_pct(a: Option<(u64, u64)>, b: Option<(u64, u64)>) -> Option<f64> {
    let ((busy0, total0), (busy1, total1)) = a.zip(b)?;
    let total = total1.checked_sub(total0).filter(|t| *t > 0)?;
    #[allow(clippy::cast_precision_loss)]
    let pct = 100.0 * busy1.saturating_sub(busy0) as f64 / total as f64;
    Some(pct)
}

/// `Cpus_allowed_list` of a process.
pub fn allowed_cpus(pid: &str) -> Option<String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .map(|v| v.trim().to_owned())
}

/// Whether a CPU list such as `0-1,4` contains `cpu`.
pub fn cpu_list_contains(list: &str, cpu: usize) -> bool {
    list.split(',').any(|part| {
        let mut ends = part.trim().splitn(2, '-').map(str::parse::<usize>);
        match (ends.next(), ends.next()) {
            (Some(Ok(a)), None) => a == cpu,
            (Some(Ok(a)), Some(Ok(b))) => (a..=b).contains(&cpu),
            _ => false,
        }
    })
}

/// Server CPU time and core busyness over one measured phase.
pub struct CpuWindow {
    pid: String,
    server_core: usize,
    server0: Option<u64>,
    client0: Option<u64>,
    core0: Option<(u64, u64)>,
}

/// What a [`CpuWindow`] measured.
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuUsed {
    /// Nanoseconds of CPU the server used.
    pub server_ns: Option<u64>,
    /// Nanoseconds of CPU this generator used.
    pub client_ns: Option<u64>,
    /// How busy the server's core was, whoever used it.
    pub server_core_busy_pct: Option<f64>,
}

impl CpuWindow {
    /// Starts measuring the server `pid`, pinned to `server_core`.
    pub fn start(pid: u32, server_core: usize) -> Self {
        let pid = pid.to_string();
        Self {
            server0: cpu_ns(&pid),
            client0: cpu_ns("self"),
            core0: core_times(server_core),
            pid,
            server_core,
        }
    }

    /// Stops measuring.
    pub fn stop(self) -> CpuUsed {
        let server1 = cpu_ns(&self.pid);
        let client1 = cpu_ns("self");
        let core1 = core_times(self.server_core);
        CpuUsed {
            server_ns: self.server0.zip(server1).map(|(a, b)| b.saturating_sub(a)),
            client_ns: self.client0.zip(client1).map(|(a, b)| b.saturating_sub(a)),
            server_core_busy_pct: busy_pct(self.core0, core1),
        }
    }
}
