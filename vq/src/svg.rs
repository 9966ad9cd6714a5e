//! Server-drawn SVG charts for the dashboard (no JavaScript, no external assets).

use std::fmt::Write;

/// Escapes text for HTML/SVG content and attribute values.
pub fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// A short human form of a number.
pub fn num(v: f64) -> String {
    if v == 0.0 {
        "0".into()
    } else if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.4}")
    }
}

/// Horizontal bars with labels: (label, value, colour); `unit` is appended to values.
pub fn bars(title: &str, items: &[(String, f64, &str)], unit: &str) -> String {
    let (w, row) = (420.0, 28.0);
    let h = 30.0 + row * items.len() as f64;
    let max = items.iter().map(|i| i.1).fold(0.0, f64::max).max(1e-12);
    let mut s = format!(
        r#"<svg class="chart" role="img" aria-label="{t}" width="{w}" height="{h}" viewBox="0 0 {w} {h}"><text x="4" y="16" class="ct">{t}</text>"#,
        t = esc(title)
    );
    for (i, (label, v, colour)) in items.iter().enumerate() {
        let y = 26.0 + row * i as f64;
        let bw = (v / max) * (w - 190.0);
        let _ = write!(
            s,
            r#"<text x="4" y="{ty}" class="cl">{l}</text><rect x="100" y="{y}" width="{bw:.1}" height="18" fill="{colour}"/><text x="{tx:.1}" y="{ty}" class="cl">{v} {u}</text>"#,
            ty = y + 13.0,
            l = esc(label),
            tx = 104.0 + bw,
            v = num(*v),
            u = esc(unit)
        );
    }
    s.push_str("</svg>");
    s
}

/// A line chart of (x seconds, y) points with min/max labels; a None y breaks the line
/// (no scans in that interval, so no mean latency).
pub fn line(title: &str, pts: &[(f64, Option<f64>)], unit: &str, colour: &str) -> String {
    let (w, h, l, r, t, b) = (420.0, 170.0, 52.0, 10.0, 24.0, 24.0);
    let mut s = format!(
        r#"<svg class="chart" role="img" aria-label="{tt}" width="{w}" height="{h}" viewBox="0 0 {w} {h}"><text x="4" y="16" class="ct">{tt}</text>"#,
        tt = esc(title)
    );
    let _ = write!(
        s,
        r##"<line x1="{l}" y1="{yb}" x2="{xr}" y2="{yb}" stroke="#999"/><line x1="{l}" y1="{t}" x2="{l}" y2="{yb}" stroke="#999"/>"##,
        yb = h - b,
        xr = w - r
    );
    if pts.len() < 2 {
        let _ = write!(
            s,
            r#"<text x="{x}" y="{y}" class="cl">waiting for samples</text></svg>"#,
            x = l + 10.0,
            y = h / 2.0
        );
        return s;
    }
    let (x0, x1) = (pts[0].0, pts[pts.len() - 1].0);
    let ymax = pts.iter().filter_map(|p| p.1).fold(0.0, f64::max).max(1e-9) * 1.1;
    let sx = |x: f64| l + (x - x0) / (x1 - x0).max(1e-9) * (w - l - r);
    let sy = |y: f64| (h - b) - y / ymax * (h - t - b);
    for run in pts.split(|p| p.1.is_none()).filter(|run| !run.is_empty()) {
        let path: Vec<String> = run
            .iter()
            .map(|&(x, y)| format!("{:.1},{:.1}", sx(x), sy(y.unwrap_or(0.0))))
            .collect();
        if run.len() == 1 {
            let (x, y) = (sx(run[0].0), sy(run[0].1.unwrap_or(0.0)));
            let _ = write!(
                s,
                r#"<circle cx="{x:.1}" cy="{y:.1}" r="2" fill="{colour}"/>"#
            );
        } else {
            let _ = write!(
                s,
                r#"<polyline fill="none" stroke="{colour}" stroke-width="2" points="{p}"/>"#,
                p = path.join(" ")
            );
        }
    }
    let _ = write!(
        s,
        r#"<text x="2" y="{t2}" class="cl">{ym} {u}</text><text x="2" y="{yb}" class="cl">0</text><text x="{l}" y="{h2}" class="cl">-{span:.0} s</text><text x="{xr}" y="{h2}" class="cl" text-anchor="end">now</text></svg>"#,
        t2 = t + 4.0,
        ym = num(ymax / 1.1),
        u = esc(unit),
        yb = h - b,
        h2 = h - 6.0,
        span = x1 - x0,
        xr = w - r
    );
    s
}

/// The quantizer comparison: one row per candidate with its code size (bytes per vector,
/// log scale) and its recall@10 on a 0.9..1 scale. Rows are (label, bytes, recall, chosen, current).
pub fn compare(title: &str, rows: &[(String, f64, f64, bool, bool)]) -> String {
    let (w, row) = (700.0, 20.0);
    let h = 46.0 + row * rows.len() as f64;
    let (lx, sw, rx, rw) = (245.0, 170.0, 490.0, 150.0);
    let max_log = rows
        .iter()
        .map(|r| (r.1.max(1.0)).log2() + 1.0)
        .fold(1.0, f64::max);
    let mut s = format!(
        r#"<svg class="chart" role="img" aria-label="{t}" width="{w}" height="{h}" viewBox="0 0 {w} {h}"><text x="4" y="16" class="ct">{t}</text><text x="{lx}" y="34" class="cl">bytes per vector (log scale)</text><text x="{rx}" y="34" class="cl">recall@10 (0.90 – 1.00)</text>"#,
        t = esc(title)
    );
    for (i, (label, bytes, recall, chosen, current)) in rows.iter().enumerate() {
        let y = 40.0 + row * i as f64;
        let bw = ((bytes.max(1.0)).log2() + 1.0) / max_log * sw;
        let rwid = ((recall - 0.9) / 0.1).clamp(0.0, 1.0) * rw;
        let mark = match (chosen, current) {
            (true, true) => " ★ chosen, current",
            (true, false) => " ★ chosen",
            (false, true) => " (current)",
            _ => "",
        };
        let weight = if *chosen {
            " style=\"font-weight:700\""
        } else {
            ""
        };
        let _ = write!(
            s,
            r##"<text x="4" y="{ty}" class="cl"{weight}>{l}{m}</text><rect x="{lx}" y="{y}" width="{bw:.1}" height="14" fill="{c1}"/><text x="{bx:.1}" y="{ty}" class="cl">{b} B</text><rect x="{rx}" y="{y}" width="{rwid:.1}" height="14" fill="{c2}"/><text x="{rtx:.1}" y="{ty}" class="cl">{r:.4}</text>"##,
            ty = y + 11.0,
            l = esc(label),
            m = esc(mark),
            c1 = if *chosen { "#d62728" } else { "#1f77b4" },
            c2 = if *chosen { "#d62728" } else { "#2ca02c" },
            bx = lx + bw + 4.0,
            b = bytes,
            rtx = rx + rwid + 4.0,
            r = recall
        );
    }
    s.push_str("</svg>");
    s
}
