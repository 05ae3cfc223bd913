//! The dashboard's plots, drawn as inline SVG on the server: no script, no
//! font files, nothing fetched by the browser. Charts scale to the width of
//! the screen (a `viewBox` and `width: 100%`); the legend is HTML so it
//! wraps on a phone. Every bar carries a `<title>` with its exact value.

use maud::{Markup, html};

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 220.0;
const LEFT: f64 = 8.0;
const TOP: f64 = 18.0;
const BOTTOM: f64 = 24.0;

/// Colours of the series, in order (then again); `style.css` gives the
/// legend's swatches the same ones as classes `c0`…`c7` (the CSP allows no
/// inline style).
const PALETTE: [&str; 8] = [
    "#3b6fd8", "#e0823d", "#3aa37a", "#c8475b", "#8a63c9", "#b49a2c", "#4aa6c0", "#7a7a7a",
];

pub(crate) fn colour(n: usize) -> &'static str {
    PALETTE[n % PALETTE.len()]
}

/// One named series of values per bucket.
pub(crate) struct Series {
    pub(crate) name: String,
    /// `(bucket index, value)`; buckets without a value are 0.
    pub(crate) values: Vec<(usize, f64)>,
}

/// Stacked bars: one bar per bucket, one segment per series. `labels` names
/// the buckets (x axis); `show` formats a value for the axis and the titles.
pub(crate) fn stacked_bars(
    title: &str,
    labels: &[String],
    series: &[Series],
    show: &dyn Fn(f64) -> String,
) -> Markup {
    let n = labels.len().max(1);
    let mut totals = vec![0.0f64; n];
    for s in series {
        for &(i, v) in &s.values {
            if let Some(t) = totals.get_mut(i) {
                *t += v;
            }
        }
    }
    let max = totals.iter().cloned().fold(0.0, f64::max);
    let scale = if max > 0.0 {
        (HEIGHT - TOP - BOTTOM) / max
    } else {
        0.0
    };
    let slot = (WIDTH - LEFT) / n as f64;
    let bar = (slot * 0.8).max(1.0);
    let base = HEIGHT - BOTTOM;
    let mut stacked = vec![0.0f64; n];
    let mut rects = Vec::new();
    for (k, s) in series.iter().enumerate() {
        for &(i, v) in &s.values {
            let Some(below) = stacked.get_mut(i) else {
                continue;
            };
            let h = v * scale;
            let x = LEFT + i as f64 * slot + (slot - bar) / 2.0;
            let tip = format!(
                "{} · {}: {}",
                s.name,
                labels.get(i).map_or("", |l| l.as_str()),
                show(v)
            );
            rects.push((x, base - *below - h, h, colour(k), tip));
            *below += h;
        }
    }
    html! {
        figure.chart {
            svg viewBox=(format!("0 0 {WIDTH} {HEIGHT}")) role="img" aria-label=(title) {
                title { (title) }
                line x1=(LEFT) y1=(base) x2=(WIDTH) y2=(base) stroke="#999" stroke-width="1" {}
                text x=(LEFT) y="12" font-size="11" fill="#555" { "max " (show(max)) }
                @for (x, y, h, fill, tip) in &rects {
                    rect x=(format!("{x:.2}")) y=(format!("{y:.2}")) width=(format!("{bar:.2}"))
                        height=(format!("{h:.2}")) fill=(fill) {
                        title { (tip) }
                    }
                }
                @if let (Some(first), Some(last)) = (labels.first(), labels.last()) {
                    text x=(LEFT) y=(HEIGHT - 6.0) font-size="11" fill="#555" { (first) }
                    text x=(WIDTH) y=(HEIGHT - 6.0) font-size="11" fill="#555" text-anchor="end" { (last) }
                }
            }
            (legend(series.iter().map(|s| s.name.as_str())))
            figcaption { (title) }
        }
    }
}

/// A line of fractions (0 to 1) over time, e.g. slot utilisation.
pub(crate) fn fraction_line(title: &str, points: &[f64], first: &str, last: &str) -> Markup {
    // Wider than the bar charts: it spans the page.
    const WIDTH: f64 = 1200.0;
    let n = points.len();
    let step = if n > 1 {
        (WIDTH - LEFT) / (n - 1) as f64
    } else {
        0.0
    };
    let y = |v: f64| HEIGHT - BOTTOM - v.clamp(0.0, 1.0) * (HEIGHT - TOP - BOTTOM);
    let path: Vec<String> = points
        .iter()
        .enumerate()
        .map(|(i, &v)| format!("{:.2},{:.2}", LEFT + i as f64 * step, y(v)))
        .collect();
    html! {
        figure.chart {
            svg viewBox=(format!("0 0 {WIDTH} {HEIGHT}")) role="img" aria-label=(title) {
                title { (title) }
                line x1=(LEFT) y1=(y(0.0)) x2=(WIDTH) y2=(y(0.0)) stroke="#999" stroke-width="1" {}
                line x1=(LEFT) y1=(y(1.0)) x2=(WIDTH) y2=(y(1.0)) stroke="#ddd" stroke-width="1" {}
                text x=(LEFT) y="12" font-size="11" fill="#555" { "100%" }
                @if n > 0 {
                    polyline points=(path.join(" ")) fill="none" stroke=(colour(0)) stroke-width="2" {}
                }
                text x=(LEFT) y=(HEIGHT - 6.0) font-size="11" fill="#555" { (first) }
                text x=(WIDTH) y=(HEIGHT - 6.0) font-size="11" fill="#555" text-anchor="end" { (last) }
            }
            figcaption { (title) }
        }
    }
}

fn legend<'a>(names: impl Iterator<Item = &'a str>) -> Markup {
    html! {
        ul.legend {
            @for (k, name) in names.enumerate() {
                li { span class=(format!("swatch c{}", k % PALETTE.len())) {} (name) }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_are_scaled_to_the_tallest_stack_and_escape_names() {
        let labels = vec!["a".to_owned(), "b".to_owned()];
        let series = vec![
            Series {
                name: "<x>".into(),
                values: vec![(0, 1.0), (1, 3.0)],
            },
            Series {
                name: "y".into(),
                values: vec![(1, 1.0)],
            },
        ];
        let svg = stacked_bars("t", &labels, &series, &|v| format!("{v}")).into_string();
        // The stack of bucket 1 (3 + 1) reaches the top of the plot area.
        let full = HEIGHT - TOP - BOTTOM;
        assert!(svg.contains(&format!("height=\"{:.2}\"", full * 3.0 / 4.0)));
        assert!(svg.contains(&format!("height=\"{:.2}\"", full / 4.0)));
        assert!(svg.contains("&lt;x&gt;"), "names are escaped");
        assert!(!svg.contains("<x>"));
        assert!(svg.contains("max 4"));
    }
}
