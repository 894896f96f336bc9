//! The chart (`queues.svg`): throughput and round-trip panels as horizontal bars, written by
//! hand (no plotting dependency).

use std::fmt::Write as _;

use crate::report::Context;
use crate::summary::{KEY_BATCH, KEY_ROUND_TRIP, KEY_SINGLE, Table, mops, p50};

/// Escapes text for SVG.
pub fn xml(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A "nice" axis maximum and tick step for values up to `max`.
pub fn axis(max: f64) -> (f64, f64) {
    let max = max.max(1e-9);
    let magnitude = 10f64.powf(max.log10().floor());
    for step in [0.1, 0.2, 0.25, 0.5, 1.0, 2.0, 2.5, 5.0, 10.0] {
        let step = step * magnitude;
        if max / step <= 6.0 {
            return ((max / step).ceil() * step, step);
        }
    }
    (max, max)
}

/// One horizontal bar panel of the chart. `series` are (legend, colour, value per queue).
pub struct Panel<'a> {
    title: String,
    unit: &'static str,
    queues: &'a [&'static str],
    series: Vec<(&'static str, &'static str, Vec<Option<f64>>)>,
}

pub const SVG_WIDTH: f64 = 960.0;
pub const LABEL_WIDTH: f64 = 120.0;
pub const BAR_HEIGHT: f64 = 16.0;
pub const BAR_GAP: f64 = 3.0;
pub const GROUP_GAP: f64 = 12.0;

/// Draws `panel` with its top at `top`; returns the SVG and the panel's height.
pub fn svg_panel(panel: &Panel, top: f64) -> (String, f64) {
    let mut svg = String::new();
    let plot_left = LABEL_WIDTH;
    let plot_width = SVG_WIDTH - LABEL_WIDTH - 90.0;
    let max = panel
        .series
        .iter()
        .flat_map(|(_, _, values)| values.iter().flatten())
        .copied()
        .fold(0.0, f64::max);
    let (axis_max, step) = axis(max);
    let x = |value: f64| plot_left + value / axis_max * plot_width;
    let _ = writeln!(
        svg,
        r#"<text x="{plot_left}" y="{}" class="title">{}</text>"#,
        top + 18.0,
        xml(&panel.title)
    );
    // Legend.
    let mut legend_x = plot_left;
    for (legend, colour, _) in &panel.series {
        let _ = writeln!(
            svg,
            r#"<rect x="{legend_x}" y="{}" width="12" height="12" fill="{colour}"/>"#,
            top + 28.0
        );
        let _ = writeln!(
            svg,
            r#"<text x="{}" y="{}" class="legend">{}</text>"#,
            legend_x + 17.0,
            top + 38.5,
            xml(legend)
        );
        legend_x += 30.0 + 7.5 * legend.len() as f64;
    }
    let plot_top = top + 52.0;
    let group_height = panel.series.len() as f64 * (BAR_HEIGHT + BAR_GAP) - BAR_GAP;
    let plot_height = panel.queues.len() as f64 * (group_height + GROUP_GAP);
    // Grid and axis labels.
    let mut tick = 0.0;
    while tick <= axis_max + step / 2.0 {
        let tick_x = x(tick);
        let _ = writeln!(
            svg,
            r#"<line x1="{tick_x:.1}" y1="{plot_top}" x2="{tick_x:.1}" y2="{:.1}" class="grid"/>"#,
            plot_top + plot_height
        );
        let _ = writeln!(
            svg,
            r#"<text x="{tick_x:.1}" y="{:.1}" class="tick">{}</text>"#,
            plot_top + plot_height + 14.0,
            if step < 1.0 {
                format!("{tick:.1}")
            } else {
                format!("{tick:.0}")
            }
        );
        tick += step;
    }
    let _ = writeln!(
        svg,
        r#"<text x="{:.1}" y="{:.1}" class="axis">{}</text>"#,
        plot_left + plot_width / 2.0,
        plot_top + plot_height + 32.0,
        panel.unit
    );
    for (row, queue) in panel.queues.iter().enumerate() {
        let group_top = plot_top + row as f64 * (group_height + GROUP_GAP) + GROUP_GAP / 2.0;
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" class="queue">{}</text>"#,
            plot_left - 8.0,
            group_top + group_height / 2.0 + 4.5,
            xml(queue)
        );
        for (index, (_, colour, values)) in panel.series.iter().enumerate() {
            let bar_top = group_top + index as f64 * (BAR_HEIGHT + BAR_GAP);
            let Some(value) = values[row] else { continue };
            let width = (x(value) - plot_left).max(1.0);
            let _ = writeln!(
                svg,
                r#"<rect x="{plot_left}" y="{bar_top:.1}" width="{width:.1}" height="{BAR_HEIGHT}" fill="{colour}"/>"#
            );
            let label = if value >= 100.0 {
                format!("{value:.0}")
            } else {
                format!("{value:.1}")
            };
            let _ = writeln!(
                svg,
                r#"<text x="{:.1}" y="{:.1}" class="value">{label}</text>"#,
                plot_left + width + 4.0,
                bar_top + BAR_HEIGHT - 4.0
            );
        }
    }
    let _ = writeln!(
        svg,
        r#"<line x1="{plot_left}" y1="{plot_top}" x2="{plot_left}" y2="{:.1}" class="axisline"/>"#,
        plot_top + plot_height
    );
    (svg, plot_top - top + plot_height + 48.0)
}

pub fn chart(context: &Context, table: &Table) -> String {
    let queues: Vec<&'static str> = vec![
        "lamport",
        "cached",
        "batched",
        "mutex",
        "rtrb",
        "crossbeam",
        "std-mpsc",
    ];
    let column = |key: &str| -> Vec<Option<f64>> {
        queues.iter().map(|queue| mops(table, key, queue)).collect()
    };
    let round_trip: Vec<Option<f64>> = queues
        .iter()
        .map(|queue| p50(table, KEY_ROUND_TRIP, queue))
        .collect();
    let panels = [
        Panel {
            title: "Throughput, u64 items, capacity 1024 (higher is better)".to_string(),
            unit: "millions of items per second (Mops/s)",
            queues: &queues,
            series: vec![
                ("single items", "#4e79a7", column(KEY_SINGLE)),
                ("batches of 32", "#f28e2b", column(KEY_BATCH)),
            ],
        },
        Panel {
            title: "Ping-pong round trip, one item in flight, p50 (lower is better)".to_string(),
            unit: "nanoseconds per round trip",
            queues: &queues,
            series: vec![("round trip p50", "#59a14f", round_trip)],
        },
    ];
    let mut body = String::new();
    let mut top = 50.0;
    for panel in &panels {
        let (svg, height) = svg_panel(panel, top);
        body.push_str(&svg);
        top += height;
    }
    let subtitle = format!(
        "median of {} runs · {} · {} cores · pinned: {} · {}",
        context.options.runs,
        context.machine.first().map_or("", |(_, cpu)| cpu.as_str()),
        context
            .machine
            .get(1)
            .map_or("", |(_, cores)| cores.as_str()),
        if context.pinning.cores.is_some() {
            "yes"
        } else {
            "no"
        },
        context.machine.get(4).map_or("", |(_, date)| date.as_str()),
    );
    format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{SVG_WIDTH}" height="{top:.0}" viewBox="0 0 {SVG_WIDTH} {top:.0}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif">
<style>
  .heading {{ font-size: 18px; font-weight: bold; fill: #222; }}
  .sub {{ font-size: 12px; fill: #555; }}
  .title {{ font-size: 14px; font-weight: bold; fill: #222; }}
  .legend {{ font-size: 12px; fill: #333; }}
  .queue {{ font-size: 13px; fill: #222; text-anchor: end; }}
  .value {{ font-size: 11px; fill: #222; }}
  .tick {{ font-size: 11px; fill: #555; text-anchor: middle; }}
  .axis {{ font-size: 12px; fill: #333; text-anchor: middle; }}
  .grid {{ stroke: #ddd; stroke-width: 1; }}
  .axisline {{ stroke: #333; stroke-width: 1; }}
</style>
<rect width="100%" height="100%" fill="white"/>
<text x="16" y="24" class="heading">Piccolo queues vs rtrb, crossbeam ArrayQueue, std sync_channel</text>
<text x="16" y="42" class="sub">{}</text>
{body}</svg>
"##,
        xml(&subtitle)
    )
}
