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

/// A line chart of (x seconds, y) points with min/max labels.
pub fn line(title: &str, pts: &[(f64, f64)], unit: &str, colour: &str) -> String {
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
    let ymax = pts.iter().map(|p| p.1).fold(0.0, f64::max).max(1e-9) * 1.1;
    let sx = |x: f64| l + (x - x0) / (x1 - x0).max(1e-9) * (w - l - r);
    let sy = |y: f64| (h - b) - y / ymax * (h - t - b);
    let path: Vec<String> = pts
        .iter()
        .map(|&(x, y)| format!("{:.1},{:.1}", sx(x), sy(y)))
        .collect();
    let _ = write!(
        s,
        r#"<polyline fill="none" stroke="{colour}" stroke-width="2" points="{p}"/><text x="2" y="{t2}" class="cl">{ym} {u}</text><text x="2" y="{yb}" class="cl">0</text><text x="{l}" y="{h2}" class="cl">-{span:.0} s</text><text x="{xr}" y="{h2}" class="cl" text-anchor="end">now</text></svg>"#,
        p = path.join(" "),
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

/// A scatter of quantizer candidates: x = bytes per vector (log2), y = recall.
/// Points are (label, bytes, recall, chosen, current).
pub fn scatter(title: &str, pts: &[(String, f64, f64, bool, bool)]) -> String {
    let (w, h, l, r, t, b) = (560.0, 260.0, 52.0, 20.0, 24.0, 30.0);
    let mut s = format!(
        r#"<svg class="chart" role="img" aria-label="{tt}" width="{w}" height="{h}" viewBox="0 0 {w} {h}"><text x="4" y="16" class="ct">{tt}</text>"#,
        tt = esc(title)
    );
    if pts.is_empty() {
        s.push_str("</svg>");
        return s;
    }
    let lx: Vec<f64> = pts.iter().map(|p| p.1.max(1.0).log2()).collect();
    let (x0, x1) = (
        lx.iter().cloned().fold(f64::INFINITY, f64::min),
        lx.iter().cloned().fold(f64::NEG_INFINITY, f64::max),
    );
    let y0 = pts.iter().map(|p| p.2).fold(1.0, f64::min).min(0.9).max(0.0);
    let sx = |x: f64| l + (x - x0) / (x1 - x0).max(1e-9) * (w - l - r - 90.0);
    let sy = |y: f64| (h - b) - (y - y0) / (1.0 - y0).max(1e-9) * (h - t - b);
    let _ = write!(
        s,
        r##"<line x1="{l}" y1="{yb}" x2="{xr}" y2="{yb}" stroke="#999"/><line x1="{l}" y1="{t}" x2="{l}" y2="{yb}" stroke="#999"/><text x="2" y="{t2}" class="cl">1.0</text><text x="2" y="{yb}" class="cl">{y0:.2}</text><text x="{l}" y="{h2}" class="cl">bytes per vector (log scale) →   recall@10 ↑</text>"##,
        yb = h - b,
        xr = w - r,
        t2 = t + 4.0,
        h2 = h - 8.0
    );
    for (p, x) in pts.iter().zip(&lx) {
        let colour = if p.3 { "#d62728" } else if p.4 { "#2ca02c" } else { "#1f77b4" };
        let _ = write!(
            s,
            r#"<circle cx="{cx:.1}" cy="{cy:.1}" r="{rad}" fill="{colour}"/><text x="{tx:.1}" y="{ty:.1}" class="cl">{lab} ({b} B)</text>"#,
            cx = sx(*x),
            cy = sy(p.2),
            rad = if p.3 { 6 } else { 4 },
            tx = sx(*x) + 7.0,
            ty = sy(p.2) + 4.0,
            lab = esc(&p.0),
            b = p.1
        );
    }
    s.push_str("</svg>");
    s
}
