//! Markdown tables and SVG plots of a run.

use crate::{CaseResult, Engine, RunResult};
use anyhow::Result;
use plotters::prelude::*;
use std::fmt::Write;
use std::path::Path;

const MIB: f64 = 1048576.0;

/// QPS (1 client, or N clients) at `target` recall, interpolated linearly between the two
/// sweep points around it; None when the case never reaches it.
pub fn qps_at(c: &CaseResult, target: f64, concurrent: bool) -> Option<f64> {
    let pts: Vec<(f64, f64)> = c
        .points
        .iter()
        .map(|p| (p.recall, if concurrent { p.qps_n } else { p.qps1 }))
        .collect();
    if pts.is_empty() {
        return None;
    }
    if pts[0].0 >= target {
        // Already above the target at the smallest ef_search: best QPS among the points above it.
        return pts
            .iter()
            .filter(|p| p.0 >= target)
            .map(|p| p.1)
            .reduce(f64::max);
    }
    for w in pts.windows(2) {
        let (a, b) = (w[0], w[1]);
        if a.0 < target && b.0 >= target {
            let t = (target - a.0) / (b.0 - a.0);
            return Some(a.1 + t * (b.1 - a.1));
        }
    }
    None
}

fn fmt_opt(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "—".to_string(), |x| format!("{x:.digits$}"))
}

fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}×", a / b),
        _ => "—".into(),
    }
}

pub fn markdown(run: &RunResult) -> String {
    let mut s = String::new();
    let n = run.clients;
    let _ = writeln!(s, "## {}\n", run.title);
    let _ = writeln!(
        s,
        "- data: {} — {} rows × {} dims, {} queries, metric {}, recall@10 against exact neighbours",
        run.dataset, run.rows, run.dims, run.queries, run.metric
    );
    let _ = writeln!(
        s,
        "- index parameters: m = {}, ef_construction = {}; qhnsw.rerank_candidates = {}; pgvector binary_quantize case re-ranks max(ef_search, {}) candidates",
        run.m, run.ef_construction, run.rerank_candidates, run.bq_candidates
    );
    let _ = writeln!(s, "- machine: {}", run.machine);
    let _ = writeln!(
        s,
        "- timing: every pass is run {} times and the fastest kept; QPS at a recall level is interpolated between sweep points (a case already above it at ef_search 10 gets its best QPS above it); the load average shows other work on the machine",
        run.repeat
    );
    let server: Vec<String> = run
        .server
        .iter()
        .filter(|(k, _)| k != "version")
        .map(|(k, v)| format!("{k} = {v}"))
        .collect();
    let version = run
        .server
        .iter()
        .find(|(k, _)| k == "version")
        .map(|(_, v)| v.split(" on ").next().unwrap_or(v).to_string());
    let _ = writeln!(
        s,
        "- server: {}; {}; pgvector {}",
        version.unwrap_or_default(),
        server.join(", "),
        run.pgvector.as_deref().unwrap_or("not installed")
    );
    let heaps: Vec<String> = run
        .heap_bytes
        .iter()
        .map(|(t, b)| format!("{t} {:.0} MiB", *b as f64 / MIB))
        .collect();
    let _ = writeln!(s, "- tables (heap + TOAST): {}", heaps.join(", "));
    let _ = writeln!(s, "- whole run: {:.0} s", run.total_secs);
    for note in &run.notes {
        let _ = writeln!(s, "- {note}");
    }
    let _ = writeln!(s);

    let pgv = run
        .cases
        .iter()
        .find(|c| c.engine == Engine::PgvHnsw && c.error.is_none());
    let _ = writeln!(s, "### Indexes\n");
    let t = &run.recall_targets;
    let mut hdr = String::from("| case | index size (MiB) | bytes / vector | build (s) | peak build memory (MiB): private + dynamic shared | recall@10 at ef_search 40 |");
    for x in t {
        let _ = write!(
            hdr,
            " QPS at recall {x} (1 client) | QPS at recall {x} ({n} clients) |"
        );
    }
    hdr += " load avg (before -> after) |";
    let _ = writeln!(s, "{hdr}");
    let _ = writeln!(
        s,
        "|---|---:|---:|---:|---:|---:|{}---|",
        "---:|".repeat(2 * t.len())
    );
    for c in &run.cases {
        if let Some(e) = &c.error {
            let _ = writeln!(
                s,
                "| {} | ERROR: {} |{}",
                c.label,
                e.replace('|', "/").replace('\n', " "),
                " |".repeat(5 + 2 * t.len())
            );
            continue;
        }
        let r40 = c
            .points
            .iter()
            .find(|p| p.ef_search == 40)
            .map(|p| p.recall);
        let mut row = format!(
            "| {} | {:.1} | {:.0} | {:.1} | {:.0} + {:.0} | {} |",
            c.label,
            c.index_bytes as f64 / MIB,
            c.index_bytes as f64 / run.rows.max(1) as f64,
            c.build_secs,
            c.build_peak_anon_bytes as f64 / MIB,
            c.build_peak_dsm_bytes as f64 / MIB,
            fmt_opt(r40, 3),
        );
        for &x in t {
            let _ = write!(
                row,
                " {} | {} |",
                fmt_opt(qps_at(c, x, false), 0),
                fmt_opt(qps_at(c, x, true), 0)
            );
        }
        let _ = writeln!(s, "{row} {} |", c.loadavg);
    }
    let _ = writeln!(s);

    if let Some(p) = pgv {
        let _ = writeln!(s, "### Against pgvector hnsw (vector), same run\n");
        let _ = writeln!(
            s,
            "Ratios are case / pgvector: size and build time below 1 are better, QPS above 1 is better (QPS interpolated at equal recall@10; — where a case does not reach that recall).\n"
        );
        let mut hdr = String::from("| case | size ratio | build time ratio |");
        for x in t {
            let _ = write!(
                hdr,
                " QPS ratio at recall {x} (1 client) | QPS ratio at recall {x} ({n} clients) |"
            );
        }
        let _ = writeln!(s, "{hdr}");
        let _ = writeln!(s, "|---|---:|---:|{}", "---:|".repeat(2 * t.len()));
        for c in run
            .cases
            .iter()
            .filter(|c| c.error.is_none() && c.id != p.id)
        {
            let mut row = format!(
                "| {} | {:.2}× | {:.2}× |",
                c.label,
                c.index_bytes as f64 / p.index_bytes.max(1) as f64,
                c.build_secs / p.build_secs.max(1e-9),
            );
            for &x in t {
                let _ = write!(
                    row,
                    " {} | {} |",
                    ratio(qps_at(c, x, false), qps_at(p, x, false)),
                    ratio(qps_at(c, x, true), qps_at(p, x, true))
                );
            }
            let _ = writeln!(s, "{row}");
        }
        let _ = writeln!(s);
    }

    paired_table(&mut s, run);

    let _ = writeln!(s, "### Search sweep\n");
    let _ = writeln!(
        s,
        "| case | ef_search | recall@10 | QPS (1 client) | p50 ms | p99 ms | QPS ({n} clients) | p50 ms | p99 ms |"
    );
    let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for c in run.cases.iter().filter(|c| c.error.is_none()) {
        for p in &c.points {
            let _ = writeln!(
                s,
                "| {} | {} | {:.3} | {:.0} | {:.2} | {:.2} | {:.0} | {:.2} | {:.2} |",
                c.label,
                p.ef_search,
                p.recall,
                p.qps1,
                p.p50_ms1,
                p.p99_ms1,
                p.qps_n,
                p.p50_ms_n,
                p.p99_ms_n
            );
        }
    }
    let warnings: Vec<String> = run
        .cases
        .iter()
        .flat_map(|c| c.warnings.iter().map(move |w| format!("{}: {w}", c.label)))
        .collect();
    if !warnings.is_empty() {
        let _ = writeln!(s, "\nWarnings:\n");
        for w in warnings {
            let _ = writeln!(s, "- {w}");
        }
    }
    s
}

fn color(i: usize) -> RGBColor {
    const C: [RGBColor; 10] = [
        RGBColor(31, 119, 180),
        RGBColor(255, 127, 14),
        RGBColor(44, 160, 44),
        RGBColor(214, 39, 40),
        RGBColor(148, 103, 189),
        RGBColor(140, 86, 75),
        RGBColor(227, 119, 194),
        RGBColor(127, 127, 127),
        RGBColor(188, 189, 34),
        RGBColor(23, 190, 207),
    ];
    C[i % C.len()]
}

fn recall_qps(run: &RunResult, path: &Path, concurrent: bool) -> Result<()> {
    let cases: Vec<&CaseResult> = run
        .cases
        .iter()
        .filter(|c| c.error.is_none() && !c.points.is_empty())
        .collect();
    if cases.is_empty() {
        return Ok(());
    }
    let q = |p: &crate::Point| if concurrent { p.qps_n } else { p.qps1 };
    let pts = cases.iter().flat_map(|c| c.points.iter());
    let rmin = pts.clone().map(|p| p.recall).fold(1.0, f64::min);
    let qmin = pts.clone().map(q).fold(f64::MAX, f64::min).max(1e-3);
    let qmax = pts.map(q).fold(0.0, f64::max);
    let x0 = (rmin - 0.02).clamp(0.0, 0.98);
    let root = SVGBackend::new(path, (960, 600)).into_drawing_area();
    root.fill(&WHITE)?;
    let title = format!(
        "{}: recall@10 vs QPS ({})",
        run.title,
        if concurrent {
            format!("{} clients", run.clients)
        } else {
            "1 client".into()
        }
    );
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d(x0..1.001f64, ((qmin * 0.8)..(qmax * 1.25)).log_scale())?;
    chart
        .configure_mesh()
        .x_desc("recall@10")
        .y_desc("queries per second (log)")
        .y_label_formatter(&|v| format!("{v:.0}"))
        .draw()?;
    for (i, c) in cases.iter().enumerate() {
        let col = color(i);
        let line: Vec<(f64, f64)> = c.points.iter().map(|p| (p.recall, q(p))).collect();
        let style = if c.engine == Engine::Qhnsw {
            col.stroke_width(2)
        } else {
            col.stroke_width(3)
        };
        chart
            .draw_series(LineSeries::new(line.clone(), style))?
            .label(c.label.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], col.stroke_width(3)));
        if c.engine == Engine::Qhnsw {
            chart.draw_series(
                line.iter()
                    .map(|&(x, y)| Circle::new((x, y), 4, col.filled())),
            )?;
        } else {
            chart.draw_series(
                line.iter()
                    .map(|&(x, y)| TriangleMarker::new((x, y), 6, col.filled())),
            )?;
        }
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}

fn bars(
    run: &RunResult,
    path: &Path,
    title: &str,
    unit: &str,
    value: impl Fn(&CaseResult) -> f64,
) -> Result<()> {
    let cases: Vec<&CaseResult> = run.cases.iter().filter(|c| c.error.is_none()).collect();
    if cases.is_empty() {
        return Ok(());
    }
    let n = cases.len();
    let vmax = cases.iter().map(|c| value(c)).fold(0.0, f64::max).max(1e-9);
    let root = SVGBackend::new(path, (960, 80 + 40 * n as u32)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(format!("{}: {title}", run.title), ("sans-serif", 20))
        .margin(15)
        .x_label_area_size(35)
        .y_label_area_size(10)
        .build_cartesian_2d(0.0..vmax * 1.9, 0.0..n as f64)?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .disable_y_axis()
        .x_desc(unit)
        .draw()?;
    for (i, c) in cases.iter().enumerate() {
        let y = (n - 1 - i) as f64;
        let v = value(c);
        let col = color(i);
        chart.draw_series(std::iter::once(Rectangle::new(
            [(0.0, y + 0.15), (v, y + 0.85)],
            col.filled(),
        )))?;
        chart.draw_series(std::iter::once(Text::new(
            format!("{}  {:.1} {unit}", c.label, v),
            (v + vmax * 0.02, y + 0.65),
            ("sans-serif", 14),
        )))?;
    }
    root.present()?;
    Ok(())
}

pub fn plots(run: &RunResult, out: &Path) -> Result<()> {
    recall_qps(run, &out.join("recall_qps.svg"), false)?;
    recall_qps(run, &out.join("recall_qps_clients.svg"), true)?;
    bars(run, &out.join("index_size.svg"), "index size", "MiB", |c| {
        c.index_bytes as f64 / MIB
    })?;
    bars(run, &out.join("build_time.svg"), "build time", "s", |c| {
        c.build_secs
    })?;
    Ok(())
}

/// The table of one-client QPS measured in blocks alternating with the baseline's queries.
fn paired_table(s: &mut String, run: &RunResult) {
    let paired: Vec<&CaseResult> = run.cases.iter().filter(|c| !c.paired.is_empty()).collect();
    let Some(first) = paired.first() else {
        return;
    };
    let base_label = first.paired_with.clone().unwrap_or_default();
    let base = run.cases.iter().find(|c| c.label == base_label);
    let _ = writeln!(
        s,
        "### Alternating query blocks against {base_label}, 1 client\n"
    );
    let _ = writeln!(
        s,
        "Each case's one-client pass ran in blocks alternating with the same queries on the baseline (who goes first alternates), so machine noise hits both alike; QPS are over all timed passes. The baseline's recall is from its own sweep at the same ef_search.\n"
    );
    let _ = writeln!(
        s,
        "| case | ef_search | recall@10 | baseline recall@10 | QPS | baseline QPS (same blocks) | QPS ratio |"
    );
    let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---:|");
    for c in paired {
        for p in &c.paired {
            let recall = c
                .points
                .iter()
                .find(|x| x.ef_search == p.ef_search)
                .map(|x| x.recall);
            let base_recall = base
                .and_then(|b| b.points.iter().find(|x| x.ef_search == p.ef_search))
                .map(|x| x.recall);
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {:.0} | {:.0} | {} |",
                c.label,
                p.ef_search,
                fmt_opt(recall, 3),
                fmt_opt(base_recall, 3),
                p.qps,
                p.baseline_qps,
                ratio(Some(p.qps), Some(p.baseline_qps))
            );
        }
    }
    let _ = writeln!(s);
}
