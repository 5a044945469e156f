//! Charts for the HTML report, drawn as inline SVG in Rust (no script, no font, no network): a
//! line chart for a date series (first column the day, each further column a series) and a
//! horizontal bar chart for counts by category (first column the label, second the count).

use std::fmt::Write as _;

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Float64Type, Int64Type, TimeUnit};

use super::html::escape;
use super::{Format, ResultSet, stringify};
use crate::{QueryError, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChartKind {
    Line,
    Bar,
}

impl std::str::FromStr for ChartKind {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "line" => Ok(ChartKind::Line),
            "bar" => Ok(ChartKind::Bar),
            other => Err(format!("unknown chart kind `{other}` (expected line or bar)")),
        }
    }
}

/// A chart's kind, title and the rows it plots.
#[derive(Debug, Clone)]
pub struct Chart {
    pub kind: ChartKind,
    pub title: String,
    pub data: ResultSet,
}

const WIDTH: f64 = 760.0;
const PALETTE: [&str; 6] = ["#2f6fb0", "#d9822b", "#3a9a5b", "#a23b72", "#6b5fb5", "#7f7f7f"];
/// Bars beyond this are summarised in a note; a longer list belongs in the table.
const MAX_BARS: usize = 40;

struct Series {
    name: String,
    values: Vec<Option<f64>>,
}

struct Plot {
    labels: Vec<String>,
    /// Position of each point on the x axis: days for a date axis, else the row index.
    xs: Vec<f64>,
    series: Vec<Series>,
}

impl Chart {
    pub fn svg(&self) -> Result<String> {
        let plot = self.plot()?;
        if plot.labels.is_empty() || plot.series.is_empty() {
            return Ok(no_data(&self.title));
        }
        Ok(match self.kind {
            ChartKind::Line => line(&self.title, &plot),
            ChartKind::Bar => bar(&self.title, &plot),
        })
    }

    fn plot(&self) -> Result<Plot> {
        let fields = self.data.schema.fields();
        let arrow = |e: datafusion::arrow::error::ArrowError| QueryError::output(Format::Html, e);
        let bad = |message: String| QueryError::output(Format::Html, format!("chart \"{}\": {message}", self.title));
        if fields.len() < 2 {
            return Err(bad("needs a label column and at least one value column".into()));
        }
        let mut labels = Vec::new();
        let mut xs = Vec::new();
        let mut series: Vec<Series> =
            fields.iter().skip(1).map(|f| Series { name: f.name().clone(), values: Vec::new() }).collect();
        for f in fields.iter().skip(1) {
            if !f.data_type().is_numeric() {
                return Err(bad(format!("column `{}` is {}; chart values must be numbers", f.name(), f.data_type())));
            }
        }
        for b in &self.data.batches {
            let first = b.column(0);
            labels.extend(stringify(first, Format::Html)?.iter().map(|v| v.unwrap_or("(none)").to_string()));
            let days = match first.data_type() {
                DataType::Date32 | DataType::Date64 => {
                    let d = cast(&cast(first, &DataType::Date32).map_err(arrow)?, &DataType::Int64).map_err(arrow)?;
                    Some(d.as_primitive::<Int64Type>().iter().map(|v| v.map(|v| v as f64)).collect::<Vec<_>>())
                }
                DataType::Timestamp(_, tz) => {
                    let us = cast(first, &DataType::Timestamp(TimeUnit::Microsecond, tz.clone())).map_err(arrow)?;
                    let us = cast(&us, &DataType::Int64).map_err(arrow)?;
                    Some(us.as_primitive::<Int64Type>().iter().map(|v| v.map(|v| v as f64 / 86_400e6)).collect())
                }
                _ => None,
            };
            let start = xs.len();
            match days {
                Some(d) => xs.extend(d.iter().enumerate().map(|(i, v)| v.unwrap_or((start + i) as f64))),
                None => xs.extend((start..start + b.num_rows()).map(|i| i as f64)),
            }
            for (s, col) in series.iter_mut().zip(b.columns().iter().skip(1)) {
                let v = cast(col, &DataType::Float64).map_err(arrow)?;
                s.values.extend(v.as_primitive::<Float64Type>().iter());
            }
        }
        Ok(Plot { labels, xs, series })
    }
}

/// A round axis top and tick step covering `max`: steps of 1, 2, 2.5 or 5 times a power of ten.
fn axis(max: f64) -> (f64, f64) {
    if max.is_nan() || max <= 0.0 || max.is_infinite() {
        return (1.0, 0.25);
    }
    let raw = max / 4.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0].iter().map(|m| m * mag).find(|s| *s >= raw).unwrap_or(10.0 * mag);
    let step = if max >= 4.0 { step.max(1.0) } else { step };
    ((max / step).ceil() * step, step)
}

/// 1234567 → "1,234,567"; fractions keep two decimals.
pub(crate) fn number(v: f64) -> String {
    if v.fract() != 0.0 || v.abs() >= 1e15 {
        return format!("{v:.2}");
    }
    let digits = format!("{}", v.abs() as u64);
    let mut out = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    if v < 0.0 { format!("-{out}") } else { out }
}

fn open(title: &str, height: f64) -> String {
    format!(
        "<svg class=\"chart\" role=\"img\" viewBox=\"0 0 {WIDTH} {height}\" width=\"{WIDTH}\" height=\"{height}\" \
         aria-label=\"{t}\"><title>{t}</title>",
        t = escape(title)
    )
}

fn no_data(title: &str) -> String {
    let mut s = open(title, 60.0);
    s.push_str("<text x=\"20\" y=\"36\" class=\"muted\">No data for this chart.</text></svg>");
    s
}

fn line(title: &str, p: &Plot) -> String {
    let (left, right, top) = (64.0, 20.0, 16.0);
    let legend = if p.series.len() > 1 { 24.0 } else { 0.0 };
    let plot_h = 220.0;
    let height = top + plot_h + 40.0 + legend;
    let max = p.series.iter().flat_map(|s| s.values.iter().flatten()).fold(0.0f64, |a, v| a.max(*v));
    let (ymax, step) = axis(max);
    let (xmin, xmax) = p.xs.iter().fold((f64::MAX, f64::MIN), |(lo, hi), x| (lo.min(*x), hi.max(*x)));
    let span = if xmax > xmin { xmax - xmin } else { 1.0 };
    let w = WIDTH - left - right;
    let x_at = |x: f64| if xmax > xmin { left + (x - xmin) / span * w } else { left + w / 2.0 };
    let y_at = |v: f64| top + plot_h - v / ymax * plot_h;

    let mut s = open(title, height);
    let mut tick = 0.0;
    while tick <= ymax + step / 2.0 {
        let y = y_at(tick);
        let _ = write!(
            s,
            "<line class=\"grid\" x1=\"{left}\" x2=\"{}\" y1=\"{y:.1}\" y2=\"{y:.1}\"/>\
             <text class=\"tick\" x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            left + w,
            left - 8.0,
            y + 4.0,
            number(tick)
        );
        tick += step;
    }
    let n = p.labels.len();
    let shown = n.min(6);
    let mut last_idx = usize::MAX;
    for k in 0..shown {
        let i = if shown > 1 { (k * (n - 1) + (shown - 1) / 2) / (shown - 1) } else { 0 };
        if i == last_idx {
            continue;
        }
        last_idx = i;
        // The outermost labels align with the plot's edges so they are not cut off.
        let anchor = match (i, n) {
            (_, 1) => "middle",
            (0, _) => "start",
            (i, n) if i == n - 1 => "end",
            _ => "middle",
        };
        let _ = write!(
            s,
            "<text class=\"tick\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"{anchor}\">{}</text>",
            x_at(p.xs[i]),
            top + plot_h + 18.0,
            escape(&p.labels[i])
        );
    }
    let (x2, y) = (left + w, top + plot_h);
    let _ = write!(s, "<line class=\"axis\" x1=\"{left}\" x2=\"{x2}\" y1=\"{y:.1}\" y2=\"{y:.1}\"/>");
    for (si, series) in p.series.iter().enumerate() {
        let color = PALETTE[si % PALETTE.len()];
        let mut d = String::new();
        let mut pen_down = false;
        for (i, v) in series.values.iter().enumerate() {
            match v {
                Some(v) => {
                    let _ = write!(d, "{}{:.1},{:.1} ", if pen_down { "L" } else { "M" }, x_at(p.xs[i]), y_at(*v));
                    pen_down = true;
                }
                None => pen_down = false,
            }
        }
        let _ = write!(s, "<path class=\"series\" d=\"{}\" stroke=\"{color}\"/>", d.trim_end());
        if n <= 90 {
            for (i, v) in series.values.iter().enumerate() {
                if let Some(v) = v {
                    let _ = write!(
                        s,
                        "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"{color}\"><title>{}: {} {}</title></circle>",
                        x_at(p.xs[i]),
                        y_at(*v),
                        escape(&p.labels[i]),
                        number(*v),
                        escape(&series.name)
                    );
                }
            }
        }
        if legend > 0.0 {
            let lx = left + si as f64 * 170.0;
            let ly = top + plot_h + 44.0;
            let _ = write!(
                s,
                "<rect x=\"{lx}\" y=\"{:.1}\" width=\"12\" height=\"12\" fill=\"{color}\"/>\
                 <text class=\"tick\" x=\"{}\" y=\"{ly:.1}\">{}</text>",
                ly - 10.0,
                lx + 18.0,
                escape(&series.name)
            );
        }
    }
    s.push_str("</svg>");
    s
}

fn bar(title: &str, p: &Plot) -> String {
    let (label_w, value_w, top, row_h, bar_h) = (210.0, 80.0, 8.0, 24.0, 16.0);
    let n = p.labels.len().min(MAX_BARS);
    let more = p.labels.len() - n;
    let height = top + n as f64 * row_h + 30.0 + if more > 0 { 20.0 } else { 0.0 };
    let values = &p.series[0].values;
    let max = values.iter().take(n).flatten().fold(0.0f64, |a, v| a.max(*v));
    let (vmax, step) = axis(max);
    let w = WIDTH - label_w - value_w;
    let x_at = |v: f64| label_w + v.max(0.0) / vmax * w;

    let mut s = open(title, height);
    let axis_y = top + n as f64 * row_h;
    let mut tick = 0.0;
    while tick <= vmax + step / 2.0 {
        let x = x_at(tick);
        let _ = write!(
            s,
            "<line class=\"grid\" x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{top}\" y2=\"{axis_y:.1}\"/>\
             <text class=\"tick\" x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
            axis_y + 16.0,
            number(tick)
        );
        tick += step;
    }
    for (i, (value, label)) in values.iter().zip(&p.labels).take(n).enumerate() {
        let y = top + i as f64 * row_h + (row_h - bar_h) / 2.0;
        let v = value.unwrap_or(0.0);
        let short: String = if label.chars().count() > 30 {
            label.chars().take(29).chain(std::iter::once('…')).collect()
        } else {
            label.clone()
        };
        let _ = write!(
            s,
            "<g><title>{l}: {v}</title>\
             <text class=\"label\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>\
             <rect class=\"bar\" x=\"{label_w}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{bar_h}\" fill=\"{}\"/>\
             <text class=\"value\" x=\"{:.1}\" y=\"{:.1}\">{v}</text></g>",
            label_w - 8.0,
            y + bar_h - 4.0,
            escape(&short),
            (x_at(v) - label_w).max(1.0),
            PALETTE[0],
            x_at(v) + 6.0,
            y + bar_h - 4.0,
            l = escape(label),
            v = number(v),
        );
    }
    let _ = write!(s, "<line class=\"axis\" x1=\"{label_w}\" x2=\"{label_w}\" y1=\"{top}\" y2=\"{axis_y:.1}\"/>");
    if more > 0 {
        let _ = write!(s, "<text class=\"muted\" x=\"{label_w}\" y=\"{:.1}\">… and {more} more</text>", height - 6.0);
    }
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axis_tops_are_round_and_cover_the_maximum() {
        assert_eq!(axis(0.0), (1.0, 0.25));
        assert_eq!(axis(7.0), (8.0, 2.0));
        assert_eq!(axis(37.0), (40.0, 10.0));
        assert_eq!(axis(1234.0), (1500.0, 500.0));
        assert_eq!(axis(0.35), (0.4, 0.1));
    }

    #[test]
    fn numbers_get_thousands_separators() {
        assert_eq!(number(0.0), "0");
        assert_eq!(number(1234567.0), "1,234,567");
        assert_eq!(number(-1000.0), "-1,000");
        assert_eq!(number(2.5), "2.50");
    }
}
