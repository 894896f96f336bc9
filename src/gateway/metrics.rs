//! The gateway's own counters, rendered in the Prometheus text format by `GET /metrics`:
//! requests by route and status, a latency histogram by route, connections, store errors.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// The routes, as metric labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    GetKey,
    PutKey,
    DeleteKey,
    Scan,
    Batch,
    Health,
    Info,
    Metrics,
    OpenApi,
    /// No route matched, or the request did not parse.
    Other,
}

const ROUTES: [(Route, &str); 10] = [
    (Route::GetKey, "get_key"),
    (Route::PutKey, "put_key"),
    (Route::DeleteKey, "delete_key"),
    (Route::Scan, "scan"),
    (Route::Batch, "batch"),
    (Route::Health, "health"),
    (Route::Info, "info"),
    (Route::Metrics, "metrics"),
    (Route::OpenApi, "openapi"),
    (Route::Other, "other"),
];

const STATUSES: [u16; 16] = [
    200, 201, 204, 400, 404, 405, 409, 411, 412, 413, 431, 500, 502, 503, 0, 0,
];

/// Upper bounds of the latency buckets, in microseconds.
const BUCKETS_US: [u64; 14] = [
    50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 1_000_000,
    5_000_000,
];

#[derive(Default)]
struct PerRoute {
    /// By index in `STATUSES`; the last slot counts any other status.
    statuses: [AtomicU64; 16],
    buckets: [AtomicU64; BUCKETS_US.len()],
    count: AtomicU64,
    sum_us: AtomicU64,
}

/// Shared by the reactor and the workers; every update is one relaxed atomic add.
#[derive(Default)]
pub struct Metrics {
    routes: [PerRoute; ROUTES.len()],
    pub connections_open: AtomicU64,
    pub connections_total: AtomicU64,
    pub connections_refused: AtomicU64,
    pub store_errors: AtomicU64,
    pub store_connects: AtomicU64,
    pub busy_rejections: AtomicU64,
}

fn route_index(route: Route) -> usize {
    ROUTES
        .iter()
        .position(|(r, _)| *r == route)
        .unwrap_or(ROUTES.len() - 1)
}

impl Metrics {
    /// Counts one answered request.
    pub fn record(&self, route: Route, status: u16, latency: Duration) {
        let per = &self.routes[route_index(route)];
        let slot = STATUSES[..14]
            .iter()
            .position(|&s| s == status)
            .unwrap_or(15);
        per.statuses[slot].fetch_add(1, Relaxed);
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        if let Some(bucket) = BUCKETS_US.iter().position(|&bound| us <= bound) {
            per.buckets[bucket].fetch_add(1, Relaxed);
        }
        per.count.fetch_add(1, Relaxed);
        per.sum_us.fetch_add(us, Relaxed);
    }

    /// Renders the gateway's metrics (Prometheus text format 0.0.4).
    pub fn render(&self, out: &mut String) {
        out.push_str(
            "# HELP cerializer_requests_total HTTP requests answered, by route and status.\n",
        );
        out.push_str("# TYPE cerializer_requests_total counter\n");
        for (index, (_, name)) in ROUTES.iter().enumerate() {
            let per = &self.routes[index];
            for (slot, count) in per.statuses.iter().enumerate() {
                let count = count.load(Relaxed);
                if count == 0 {
                    continue;
                }
                let status = if slot < 14 {
                    STATUSES[slot].to_string()
                } else {
                    "other".to_string()
                };
                let _ = writeln!(
                    out,
                    "cerializer_requests_total{{route=\"{name}\",status=\"{status}\"}} {count}"
                );
            }
        }
        out.push_str("# HELP cerializer_request_duration_seconds Time from a complete request to its response, by route.\n");
        out.push_str("# TYPE cerializer_request_duration_seconds histogram\n");
        for (index, (_, name)) in ROUTES.iter().enumerate() {
            let per = &self.routes[index];
            let count = per.count.load(Relaxed);
            let mut cumulative = 0;
            for (bucket, bound) in BUCKETS_US.iter().enumerate() {
                cumulative += per.buckets[bucket].load(Relaxed);
                let _ = writeln!(
                    out,
                    "cerializer_request_duration_seconds_bucket{{route=\"{name}\",le=\"{}\"}} {cumulative}",
                    *bound as f64 / 1e6
                );
            }
            let _ = writeln!(
                out,
                "cerializer_request_duration_seconds_bucket{{route=\"{name}\",le=\"+Inf\"}} {count}"
            );
            let _ = writeln!(
                out,
                "cerializer_request_duration_seconds_sum{{route=\"{name}\"}} {}",
                per.sum_us.load(Relaxed) as f64 / 1e6
            );
            let _ = writeln!(
                out,
                "cerializer_request_duration_seconds_count{{route=\"{name}\"}} {count}"
            );
        }
        let gauges = [
            (
                "cerializer_connections_open",
                "gauge",
                "HTTP connections open.",
                &self.connections_open,
            ),
            (
                "cerializer_connections_total",
                "counter",
                "HTTP connections accepted.",
                &self.connections_total,
            ),
            (
                "cerializer_connections_refused_total",
                "counter",
                "HTTP connections closed at once because the connection limit was reached.",
                &self.connections_refused,
            ),
            (
                "cerializer_store_errors_total",
                "counter",
                "Requests that failed because the store was unreachable or broke the connection.",
                &self.store_errors,
            ),
            (
                "cerializer_store_connects_total",
                "counter",
                "Successful connections of the workers to the store.",
                &self.store_connects,
            ),
            (
                "cerializer_busy_rejections_total",
                "counter",
                "Requests answered 503 because the work queue was full.",
                &self.busy_rejections,
            ),
        ];
        for (name, kind, help, value) in gauges {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            let _ = writeln!(out, "{name} {}", value.load(Relaxed));
        }
    }
}

/// Renders the server's INFO text as gauges `piccolo_info{section,field}` (numeric fields only).
pub fn render_info(info: &str, out: &mut String) {
    out.push_str("# HELP piccolo_info Numeric fields of the store's INFO, by section and field.\n");
    out.push_str("# TYPE piccolo_info gauge\n");
    let mut section = String::new();
    for line in info.lines() {
        let line = line.trim();
        if let Some(name) = line.strip_prefix('#') {
            section = name.trim().to_ascii_lowercase();
            continue;
        }
        let Some((field, value)) = line.split_once(':') else {
            continue;
        };
        if value.parse::<f64>().is_err()
            || !value
                .bytes()
                .all(|b| b.is_ascii_digit() || b == b'.' || b == b'-')
        {
            continue;
        }
        let field: String = field
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        let _ = writeln!(
            out,
            "piccolo_info{{section=\"{section}\",field=\"{field}\"}} {value}"
        );
    }
}
