//! Running `wrk --latency` and reading its report.

use std::process::Command;

use anyhow::{anyhow, Context, Result};

#[derive(Debug, Clone, Default)]
pub struct WrkResult {
    pub rps: f64,
    pub p50_us: f64,
    pub p75_us: f64,
    pub p90_us: f64,
    pub p99_us: f64,
    pub requests: f64,
    /// Non-2xx/3xx responses plus socket errors.
    pub errors: f64,
}

pub fn run(url: &str, threads: u32, connections: u32, seconds: u32) -> Result<WrkResult> {
    let out = Command::new("wrk")
        .arg(format!("-t{threads}"))
        .arg(format!("-c{connections}"))
        .arg(format!("-d{seconds}s"))
        .arg("--latency")
        .arg(url)
        .output()
        .context("running wrk (is it installed? apt-get install wrk)")?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(anyhow!(
            "wrk {url} failed ({}): {}{}",
            out.status,
            text,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    parse(&text).with_context(|| format!("reading wrk's report for {url}:\n{text}"))
}

/// A wrk duration (`812.00us`, `1.23ms`, `2.00s`, `1.5m`) in microseconds.
fn duration_us(s: &str) -> Result<f64> {
    let s = s.trim();
    let split = s
        .find(|c: char| c.is_ascii_alphabetic())
        .ok_or_else(|| anyhow!("no unit in {s:?}"))?;
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().with_context(|| format!("number in {s:?}"))?;
    let factor = match unit {
        "us" => 1.0,
        "ms" => 1_000.0,
        "s" => 1_000_000.0,
        "m" => 60_000_000.0,
        "h" => 3_600_000_000.0,
        _ => return Err(anyhow!("unknown unit in {s:?}")),
    };
    Ok(n * factor)
}

pub fn parse(text: &str) -> Result<WrkResult> {
    let mut r = WrkResult::default();
    let mut seen_rps = false;
    let mut in_distribution = false;
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with("Latency Distribution") {
            in_distribution = true;
            continue;
        }
        if in_distribution {
            let mut parts = t.split_whitespace();
            match (parts.next(), parts.next()) {
                (Some(p), Some(v)) if p.ends_with('%') => {
                    let us = duration_us(v)?;
                    match p {
                        "50%" => r.p50_us = us,
                        "75%" => r.p75_us = us,
                        "90%" => r.p90_us = us,
                        "99%" => r.p99_us = us,
                        _ => {}
                    }
                    continue;
                }
                _ => in_distribution = false,
            }
        }
        if let Some(v) = t.strip_prefix("Requests/sec:") {
            r.rps = v.trim().parse().context("Requests/sec")?;
            seen_rps = true;
        } else if let Some(v) = t.strip_prefix("Non-2xx or 3xx responses:") {
            r.errors += v.trim().parse::<f64>().context("Non-2xx count")?;
        } else if let Some(v) = t.strip_prefix("Socket errors:") {
            // connect 0, read 0, write 0, timeout 0
            for part in v.split(',') {
                if let Some(n) = part.split_whitespace().nth(1).and_then(|n| n.parse::<f64>().ok()) {
                    r.errors += n;
                }
            }
        } else if t.contains(" requests in ") {
            r.requests = t.split_whitespace().next().and_then(|n| n.parse().ok()).unwrap_or(0.0);
        }
    }
    if !seen_rps || r.p50_us == 0.0 {
        return Err(anyhow!("no Requests/sec or latency distribution"));
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_report() {
        let text = "Running 5s test @ http://127.0.0.1:1/\n  2 threads and 64 connections\n  Thread Stats   Avg      Stdev     Max   +/- Stdev\n    Latency     1.20ms  300.00us   9.00ms   80.00%\n    Req/Sec    20.00k     1.00k   25.00k    70.00%\n  Latency Distribution\n     50%  812.00us\n     75%    1.23ms\n     90%    2.00ms\n     99%    1.50s\n  200000 requests in 5.00s, 20.00MB read\n  Socket errors: connect 0, read 3, write 0, timeout 2\n  Non-2xx or 3xx responses: 7\nRequests/sec:  40000.50\nTransfer/sec:      4.00MB\n";
        let r = parse(text).expect("parses");
        assert_eq!(r.p50_us, 812.0);
        assert_eq!(r.p75_us, 1230.0);
        assert_eq!(r.p99_us, 1_500_000.0);
        assert_eq!(r.rps, 40000.5);
        assert_eq!(r.errors, 12.0);
        assert_eq!(r.requests, 200000.0);
    }
}
