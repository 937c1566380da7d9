//! Queue-length charts as standalone SVG files.
//!
//! A chart is a stack of panels that share one time axis, one panel per
//! queue (or per capacity model, in the demo), each a step plot of the
//! number of messages waiting in the queue over virtual time. Sharing the
//! time axis is the point: the eye compares how long each run took and how
//! high each queue rose without reading a number.
//!
//! The SVG is written by hand (no dependency): plain elements, every text
//! escaped, so the file opens in any browser and parses as XML.
//!
//! ```
//! use mkipc::svg::{Panel, queue_chart};
//! let panel = Panel {
//!     title: "jobs (bounded(2))".into(),
//!     samples: vec![(0.0, 0), (1.0, 1), (2.5, 2), (4.0, 0)],
//!     end_ms: 5.0,
//! };
//! let svg = queue_chart("Queue length", &[panel]);
//! assert!(svg.starts_with("<svg"));
//! assert!(svg.contains("jobs (bounded(2))"));
//! ```

use std::fmt::Write;

/// One step plot: queue length after each change, over virtual time.
#[derive(Clone, Debug, PartialEq)]
pub struct Panel {
    /// The heading above the plot.
    pub title: String,
    /// `(time in ms, queue length from then on)`, in time order.
    pub samples: Vec<(f64, usize)>,
    /// When the run ended (the plot's last segment runs to here).
    pub end_ms: f64,
}

const WIDTH: f64 = 760.0;
const LEFT: f64 = 56.0;
const RIGHT: f64 = 20.0;
const PANEL_H: f64 = 110.0;
const PANEL_GAP: f64 = 46.0;
const TOP: f64 = 44.0;
/// The caption of a queue that never held a message.
const EMPTY_CAPTION: &str =
    "always empty: no message ever waited here (taken at once, or held by its sender)";

/// Renders panels stacked vertically, sharing the time axis.
pub fn queue_chart(title: &str, panels: &[Panel]) -> String {
    let end = panels
        .iter()
        .map(|p| p.end_ms)
        .fold(0.0_f64, f64::max)
        .max(f64::MIN_POSITIVE);
    let plot_w = WIDTH - LEFT - RIGHT;
    let height = TOP + panels.len() as f64 * (PANEL_H + PANEL_GAP) + 10.0;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(
        s,
        r#"<rect x="0" y="0" width="{WIDTH}" height="{height}" fill="white"/>"#
    );
    let _ = writeln!(
        s,
        r#"<text x="{LEFT}" y="24" font-size="16" font-weight="bold">{}</text>"#,
        escape(title)
    );
    for (i, panel) in panels.iter().enumerate() {
        let top = TOP + i as f64 * (PANEL_H + PANEL_GAP) + 18.0;
        let bottom = top + PANEL_H;
        let max_len = panel.samples.iter().map(|s| s.1).max().unwrap_or(0).max(1);
        let x = |t: f64| LEFT + (t / end).clamp(0.0, 1.0) * plot_w;
        let y = |len: usize| bottom - len as f64 / max_len as f64 * PANEL_H;
        let _ = writeln!(
            s,
            r#"<text x="{LEFT}" y="{:.1}" font-weight="bold">{}</text>"#,
            top - 6.0,
            escape(&panel.title)
        );
        // Axes and labels: y from 0 to the panel's maximum, x in ms.
        let _ = writeln!(
            s,
            r##"<path d="M{LEFT:.1} {top:.1} V{bottom:.1} H{:.1}" stroke="#444" fill="none"/>"##,
            LEFT + plot_w
        );
        for (len, label_y) in [(0, bottom), (max_len, top)] {
            let _ = writeln!(
                s,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{len}</text>"#,
                LEFT - 6.0,
                label_y + 4.0
            );
        }
        for k in 0..=4 {
            let t = end * k as f64 / 4.0;
            // The last label ends at the axis's end (centred, it would run
            // past the right edge of the picture).
            let anchor = if k == 4 { "end" } else { "middle" };
            let _ = writeln!(
                s,
                r##"<text x="{:.1}" y="{:.1}" text-anchor="{anchor}" fill="#444">{} ms</text>"##,
                x(t),
                bottom + 16.0,
                trim_float(t)
            );
        }
        // The step plot.
        let mut d = format!("M{:.2} {:.2}", x(0.0), y(0));
        for &(t, len) in &panel.samples {
            let _ = write!(d, " H{:.2} V{:.2}", x(t), y(len));
        }
        let _ = write!(d, " H{:.2}", x(panel.end_ms));
        let _ = writeln!(
            s,
            r##"<path d="{d}" stroke="#1f6fb2" stroke-width="1.5" fill="none"/>"##
        );
        if panel.samples.iter().all(|s| s.1 == 0) {
            // True whatever kept it empty: a receiver always waiting (each
            // message taken at once) or no buffer (each sender held its own).
            let _ = writeln!(
                s,
                r##"<text x="{:.1}" y="{:.1}" fill="#a33">{EMPTY_CAPTION}</text>"##,
                LEFT + 12.0,
                bottom - 10.0
            );
        }
    }
    s.push_str("</svg>\n");
    s
}

fn trim_float(t: f64) -> String {
    let s = format!("{t:.1}");
    s.strip_suffix(".0").map(str::to_string).unwrap_or(s)
}

/// Escapes text for an XML text node or attribute.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if (c as u32) < 0x20 && c != '\n' && c != '\t' => {}
            c => out.push(c),
        }
    }
    out
}
