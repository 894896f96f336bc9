//! The timeline picture of a run, as Jepsen draws it: throughput over time (completions per
//! second by outcome) above, the latency of every operation (log scale, by outcome) below,
//! and the fault windows shaded across both. Plain SVG text, no dependency; the same history
//! always gives the same picture.

use std::fmt::Write as _;

use super::summary::fault_windows;
use crate::check::{Event, EventType, Process};

const WIDTH: f64 = 960.0;
const LEFT: f64 = 72.0;
const RIGHT: f64 = 24.0;
const THROUGHPUT_TOP: f64 = 48.0;
const THROUGHPUT_BOTTOM: f64 = 250.0;
const LATENCY_TOP: f64 = 300.0;
const LATENCY_BOTTOM: f64 = 520.0;
const HEIGHT: f64 = 580.0;
/// At most this many latency points are drawn: a third per outcome, each thinned to every
/// k-th operation beyond that.
pub const MAX_POINTS: usize = 20_000;
/// Throughput buckets across the run.
const BUCKETS: u64 = 120;

/// Jepsen's colours: ok blue, info orange, fail pink.
fn colour(kind: EventType) -> &'static str {
    match kind {
        EventType::Ok => "#4d9de0",
        EventType::Info => "#ffa400",
        EventType::Fail => "#ff1e90",
        EventType::Invoke => "#888888",
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A "nice" step (1, 2 or 5 times a power of ten) giving about `count` ticks over `span`.
fn nice_step(span: f64, count: f64) -> f64 {
    let raw = (span / count).max(f64::MIN_POSITIVE);
    let power = 10f64.powf(raw.log10().floor());
    let fraction = raw / power;
    let nice = if fraction <= 1.0 {
        1.0
    } else if fraction <= 2.0 {
        2.0
    } else if fraction <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * power
}

/// Draws the timeline of `events` (which need `:time`) with `title` on top.
pub fn timeline_svg(events: &[Event], title: &str) -> String {
    // Operations: (invoked, completed, outcome).
    let mut invoked_at = std::collections::HashMap::new();
    let mut ops: Vec<(u64, u64, EventType)> = Vec::new();
    let mut end_ns: u64 = 1;
    for event in events {
        let Some(time_ns) = event.time_ns else {
            continue;
        };
        end_ns = end_ns.max(time_ns);
        let Process::Client(process) = event.process else {
            continue;
        };
        if event.kind == EventType::Invoke {
            invoked_at.insert(process, time_ns);
        } else if let Some(start) = invoked_at.remove(&process) {
            ops.push((start, time_ns, event.kind));
        }
    }
    let seconds = end_ns as f64 / 1e9;
    let x = |ns: u64| LEFT + (ns as f64 / end_ns as f64) * (WIDTH - LEFT - RIGHT);

    let mut svg = String::with_capacity(64 * 1024);
    let _ = write!(
        svg,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{HEIGHT}\" \
         viewBox=\"0 0 {WIDTH} {HEIGHT}\" font-family=\"sans-serif\" font-size=\"11\">\n\
         <rect x=\"0\" y=\"0\" width=\"{WIDTH}\" height=\"{HEIGHT}\" fill=\"white\"/>\n\
         <text x=\"{LEFT}\" y=\"20\" font-size=\"14\">{}</text>\n",
        escape(title)
    );

    // Fault windows, under everything else.
    for fault in fault_windows(events) {
        let (left, right) = (x(fault.start_ns), x(fault.end_ns.unwrap_or(end_ns)));
        let _ = writeln!(
            svg,
            "<g class=\"fault\"><rect x=\"{left:.1}\" y=\"{THROUGHPUT_TOP}\" width=\"{:.1}\" height=\"{:.1}\" \
             fill=\"#000000\" fill-opacity=\"0.08\"/><text x=\"{:.1}\" y=\"{:.1}\" fill=\"#555555\">{}</text></g>",
            (right - left).max(1.0),
            LATENCY_BOTTOM - THROUGHPUT_TOP,
            left + 2.0,
            THROUGHPUT_TOP - 4.0,
            escape(&fault.kind)
        );
    }

    // Throughput: completions per second in each bucket, one line per outcome.
    let bucket_ns = (end_ns / BUCKETS).max(1);
    let buckets = (end_ns / bucket_ns + 1) as usize;
    let kinds = [EventType::Ok, EventType::Info, EventType::Fail];
    let mut counts = vec![[0u64; 3]; buckets];
    for &(_, done, kind) in &ops {
        let slot = kinds.iter().position(|&k| k == kind).expect("a completion");
        counts[(done / bucket_ns) as usize][slot] += 1;
    }
    let per_second = |count: u64| count as f64 / (bucket_ns as f64 / 1e9);
    let peak = counts
        .iter()
        .flatten()
        .map(|&count| per_second(count))
        .fold(1.0, f64::max);
    let rate_step = nice_step(peak, 4.0);
    let rate_top = (peak / rate_step).ceil() * rate_step;
    let y_rate =
        |rate: f64| THROUGHPUT_BOTTOM - rate / rate_top * (THROUGHPUT_BOTTOM - THROUGHPUT_TOP);
    let mut tick = 0.0;
    while tick <= rate_top + rate_step / 2.0 {
        let y = y_rate(tick);
        let _ = writeln!(
            svg,
            "<line x1=\"{LEFT}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"#e0e0e0\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{tick}</text>",
            WIDTH - RIGHT,
            LEFT - 6.0,
            y + 4.0
        );
        tick += rate_step;
    }
    for (slot, &kind) in kinds.iter().enumerate() {
        if counts.iter().all(|bucket| bucket[slot] == 0) {
            continue;
        }
        let points: Vec<String> = counts
            .iter()
            .enumerate()
            .map(|(i, bucket)| {
                let middle = i as u64 * bucket_ns + bucket_ns / 2;
                format!(
                    "{:.1},{:.1}",
                    x(middle.min(end_ns)),
                    y_rate(per_second(bucket[slot]))
                )
            })
            .collect();
        let _ = writeln!(
            svg,
            "<polyline class=\"throughput\" fill=\"none\" stroke=\"{}\" stroke-width=\"1.5\" points=\"{}\"/>",
            colour(kind),
            points.join(" ")
        );
    }
    let _ = writeln!(
        svg,
        "<text x=\"14\" y=\"{:.1}\" transform=\"rotate(-90 14 {:.1})\" text-anchor=\"middle\">throughput (ops/s)</text>",
        (THROUGHPUT_TOP + THROUGHPUT_BOTTOM) / 2.0,
        (THROUGHPUT_TOP + THROUGHPUT_BOTTOM) / 2.0
    );

    // Latency: a point per operation at its invocation, log scale from 0.01 ms.
    let latencies_ms: Vec<f64> = ops
        .iter()
        .map(|&(start, done, _)| (done - start) as f64 / 1e6)
        .collect();
    let low_exponent = -2i32;
    let high_exponent = latencies_ms
        .iter()
        .fold(1.0f64, |max, &ms| max.max(ms))
        .log10()
        .ceil()
        .max(0.0) as i32;
    let y_latency = |ms: f64| {
        let log = ms.max(10f64.powi(low_exponent)).log10();
        LATENCY_BOTTOM
            - (log - f64::from(low_exponent)) / f64::from(high_exponent - low_exponent)
                * (LATENCY_BOTTOM - LATENCY_TOP)
    };
    for exponent in low_exponent..=high_exponent {
        let ms = 10f64.powi(exponent);
        let y = y_latency(ms);
        let _ = writeln!(
            svg,
            "<line x1=\"{LEFT}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"#e0e0e0\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            WIDTH - RIGHT,
            LEFT - 6.0,
            y + 4.0,
            if exponent < 0 {
                format!("{ms:.2}")
            } else {
                format!("{ms:.0}")
            }
        );
    }
    // Each outcome gets a third of the points, so rare timeouts are never thinned away.
    let mut thinned = false;
    for kind in kinds {
        let count = ops.iter().filter(|op| op.2 == kind).count();
        let stride = count.div_ceil(MAX_POINTS / kinds.len()).max(1);
        thinned |= stride > 1;
        let _ = write!(
            svg,
            "<g class=\"latency\" fill=\"{}\" fill-opacity=\"0.6\">",
            colour(kind)
        );
        let of_kind = ops.iter().zip(&latencies_ms).filter(|(op, _)| op.2 == kind);
        for (&(start, _, _), &latency_ms) in of_kind.step_by(stride) {
            let _ = write!(
                svg,
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"1.6\"/>",
                x(start),
                y_latency(latency_ms)
            );
        }
        svg.push_str("</g>\n");
    }
    let _ = writeln!(
        svg,
        "<text x=\"14\" y=\"{:.1}\" transform=\"rotate(-90 14 {:.1})\" text-anchor=\"middle\">latency (ms){}</text>",
        (LATENCY_TOP + LATENCY_BOTTOM) / 2.0,
        (LATENCY_TOP + LATENCY_BOTTOM) / 2.0,
        if thinned { ", thinned" } else { "" }
    );

    // Frames, the time axis, the legend.
    for (top, bottom) in [
        (THROUGHPUT_TOP, THROUGHPUT_BOTTOM),
        (LATENCY_TOP, LATENCY_BOTTOM),
    ] {
        let _ = writeln!(
            svg,
            "<rect x=\"{LEFT}\" y=\"{top}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"none\" stroke=\"#444444\"/>",
            WIDTH - LEFT - RIGHT,
            bottom - top
        );
    }
    let time_step = nice_step(seconds, 10.0);
    let mut t = 0.0;
    while t <= seconds + 1e-9 {
        let px = x((t * 1e9) as u64);
        let _ = writeln!(
            svg,
            "<line x1=\"{px:.1}\" y1=\"{LATENCY_BOTTOM}\" x2=\"{px:.1}\" y2=\"{:.1}\" stroke=\"#444444\"/>\
             <text x=\"{px:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
            LATENCY_BOTTOM + 4.0,
            LATENCY_BOTTOM + 16.0,
            if time_step < 1.0 {
                format!("{t:.1}")
            } else {
                format!("{t:.0}")
            }
        );
        t += time_step;
    }
    let _ = writeln!(
        svg,
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">time (s)</text>",
        (LEFT + WIDTH - RIGHT) / 2.0,
        LATENCY_BOTTOM + 34.0
    );
    let mut legend_x = WIDTH - RIGHT - 300.0;
    for (kind, name) in [
        (EventType::Ok, "ok"),
        (EventType::Info, "info"),
        (EventType::Fail, "fail"),
    ] {
        let _ = writeln!(
            svg,
            "<rect x=\"{legend_x:.1}\" y=\"12\" width=\"10\" height=\"10\" fill=\"{}\"/>\
             <text x=\"{:.1}\" y=\"21\">{name}</text>",
            colour(kind),
            legend_x + 14.0
        );
        legend_x += 60.0;
    }
    let _ = writeln!(
        svg,
        "<rect x=\"{legend_x:.1}\" y=\"12\" width=\"10\" height=\"10\" fill=\"#000000\" fill-opacity=\"0.15\"/>\
         <text x=\"{:.1}\" y=\"21\">fault</text>",
        legend_x + 14.0
    );
    svg.push_str("</svg>\n");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chaos::recorder::{ClientLog, NemesisLog, merge};
    use crate::check::Value;

    /// Every element closed, in order: a well-formedness check small enough to trust.
    fn assert_balanced(svg: &str) {
        let mut open: Vec<&str> = Vec::new();
        let mut rest = svg;
        while let Some(at) = rest.find('<') {
            let end = rest[at..].find('>').expect("a tag ends") + at;
            let tag = &rest[at + 1..end];
            if let Some(name) = tag.strip_prefix('/') {
                assert_eq!(open.pop(), Some(name), "closing {name}");
            } else if !tag.ends_with('/') {
                open.push(tag.split_whitespace().next().expect("a name"));
            }
            rest = &rest[end + 1..];
        }
        assert!(open.is_empty(), "unclosed {open:?}");
    }

    fn run(ops: u64, pauses: &[(u64, u64)]) -> Vec<Event> {
        let mut log = ClientLog::new(0, 1);
        let mut nemesis = NemesisLog::default();
        for i in 0..ops {
            let start = i * 10_000_000;
            log.invoke("getv", None, Value::Nil, start);
            let kind = if i % 7 == 3 {
                EventType::Info
            } else {
                EventType::Ok
            };
            log.complete(kind, Value::Nil, None, start + 1_000_000 + i * 1000);
        }
        for &(start, end) in pauses {
            nemesis.start("pause", Value::Str("n1".into()), start);
            nemesis.stop("pause", Value::Str("n1 & <2>".into()), end);
        }
        merge(vec![log.finish(ops * 10_000_000), nemesis.finish()])
    }

    #[test]
    fn draws_faults_lines_and_points() {
        let events = run(
            300,
            &[(500_000_000, 900_000_000), (2_000_000_000, 2_200_000_000)],
        );
        let svg = timeline_svg(&events, "run <1> & more");
        assert_balanced(&svg);
        assert_eq!(svg.matches("class=\"fault\"").count(), 2);
        assert_eq!(
            svg.matches("class=\"throughput\"").count(),
            2,
            "ok and info lines"
        );
        assert_eq!(svg.matches("<circle").count(), 300);
        assert!(svg.contains("run &lt;1&gt; &amp; more"));
        for broken in ["NaN", "inf\"", "inf,", "inf "] {
            assert!(!svg.contains(broken), "a broken number: {broken}");
        }
        assert_eq!(
            svg,
            timeline_svg(&events, "run <1> & more"),
            "deterministic"
        );
    }

    #[test]
    fn thins_points_and_survives_tiny_histories() {
        let ops = MAX_POINTS as u64 * 2 + 10;
        let events = run(ops, &[]);
        let svg = timeline_svg(&events, "big");
        assert_balanced(&svg);
        let points = svg.matches("<circle").count();
        assert!(
            points <= MAX_POINTS && points > MAX_POINTS / 2,
            "{points} points"
        );
        assert!(svg.contains("latency (ms), thinned"));
        // The rare outcome is drawn in full: one :info in 7 operations, fewer than a third.
        let info_points = svg
            .split("fill=\"#ffa400\" fill-opacity")
            .nth(1)
            .expect("an info group");
        let info_points = info_points[..info_points.find("</g>").expect("closed")]
            .matches("<circle")
            .count();
        assert_eq!(
            info_points as u64,
            (0..ops).filter(|i| i % 7 == 3).count() as u64
        );
        for events in [Vec::new(), run(1, &[])] {
            let svg = timeline_svg(&events, "tiny");
            assert_balanced(&svg);
            assert!(!svg.contains("NaN"));
        }
    }
}
