//! The report's charts, drawn by plotters into SVG. Each value is also
//! written as a text label, so a reader (and a test) can see the numbers
//! the JSON output gives. Colours come from CSS in light and dark mode: the
//! HTML styles override the black plotters draws text and axes with.

use super::{Bar, Series};
use crate::analyse::plan::Step;
use plotters::prelude::*;

const FONT: &str = "sans-serif";

fn money(x: f64) -> String {
    format!("${x:.2}")
}

/// Cost per target at one user level, stacked by cost category.
pub fn cost_by_target(bars: &[Bar], users: u32) -> Result<String, String> {
    let mut categories: Vec<String> = bars
        .iter()
        .flat_map(|b| {
            b.breakdown
                .iter()
                .filter(|(_, v)| **v > 0.0)
                .map(|(k, _)| k.clone())
        })
        .collect();
    categories.sort();
    categories.dedup();
    let n = bars.len().max(1) as u32;
    // Headroom for the value labels and the legend.
    let top = bars.iter().map(|b| b.total).fold(1.0, f64::max) * 1.4;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (960, 480)).into_drawing_area();
        let mut chart = ChartBuilder::on(&root)
            .caption(
                format!("Monthly cost per fitting target at {users} users"),
                (FONT, 18),
            )
            .margin(12)
            .x_label_area_size(150)
            .y_label_area_size(70)
            .build_cartesian_2d((0..n).into_segmented(), 0f64..top)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .light_line_style(TRANSPARENT)
            .y_desc("USD per month")
            .x_desc("target")
            .x_labels(n as usize)
            .x_label_formatter(&|x| match x {
                SegmentValue::CenterOf(i) => bars
                    .get(*i as usize)
                    .map_or(String::new(), |b| b.target.clone()),
                _ => String::new(),
            })
            .x_label_style((FONT, 11).into_font().transform(FontTransform::Rotate90))
            .y_label_formatter(&|y| format!("${y:.0}"))
            .draw()
            .map_err(|e| e.to_string())?;
        // Stacks: draw the running sums from the top category down, each
        // over the last, so every segment shows its own colour.
        for k in (0..categories.len()).rev() {
            let color = Palette99::pick(k).to_rgba();
            let cat = &categories[k];
            chart
                .draw_series(
                    Histogram::vertical(&chart)
                        .margin(6)
                        .style(color.filled())
                        .data(bars.iter().enumerate().map(|(i, b)| {
                            let sum: f64 = categories[..=k]
                                .iter()
                                .map(|c| b.breakdown.get(c).copied().unwrap_or(0.0))
                                .sum();
                            (i as u32, sum)
                        })),
                )
                .map_err(|e| e.to_string())?
                .label(cat.clone())
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 10, y + 5)], color.filled())
                });
        }
        chart
            .draw_series(bars.iter().enumerate().map(|(i, b)| {
                Text::new(
                    // An unpriced line is not free: the bar is a lower bound.
                    if b.complete {
                        money(b.total)
                    } else {
                        format!("≥ {}", money(b.total))
                    },
                    (SegmentValue::CenterOf(i as u32), b.total + top * 0.03),
                    TextStyle::from((FONT, 11).into_font()).pos(
                        plotters::style::text_anchor::Pos::new(
                            plotters::style::text_anchor::HPos::Center,
                            plotters::style::text_anchor::VPos::Bottom,
                        ),
                    ),
                )
            }))
            .map_err(|e| e.to_string())?;
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .label_font((FONT, 12))
            .draw()
            .map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

/// Cost against users for the cheapest targets, with the growth path (the
/// cheapest fitting target at each level) marked and labelled.
pub fn cost_by_users(series: &[Series], path: &[Step]) -> Result<String, String> {
    let top = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .chain(path.iter().filter_map(|s| s.monthly))
        .fold(1.0, f64::max)
        * 1.35;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (960, 480)).into_drawing_area();
        let mut chart = ChartBuilder::on(&root)
            .caption(
                "Monthly cost as users grow (growth path marked)",
                (FONT, 18),
            )
            .margin(12)
            .x_label_area_size(50)
            .y_label_area_size(70)
            .build_cartesian_2d((1.5f64..3000f64).log_scale(), 0f64..top)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .light_line_style(TRANSPARENT)
            .x_desc("users (log scale)")
            .y_desc("USD per month")
            .x_label_formatter(&|x| format!("{x:.0}"))
            .y_label_formatter(&|y| format!("${y:.0}"))
            .draw()
            .map_err(|e| e.to_string())?;
        for (i, s) in series.iter().enumerate() {
            let color = Palette99::pick(i).to_rgba();
            let pts: Vec<(f64, f64)> = s.points.iter().map(|(u, c)| (*u as f64, *c)).collect();
            chart
                .draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))
                .map_err(|e| e.to_string())?
                .label(s.target.clone())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2))
                });
            chart
                .draw_series(pts.iter().map(|p| Circle::new(*p, 3, color.filled())))
                .map_err(|e| e.to_string())?;
        }
        let marks: Vec<(f64, f64, String)> = path
            .iter()
            .filter_map(|s| {
                Some((
                    s.users as f64,
                    s.monthly?,
                    format!(
                        "{}: {} {}",
                        s.users,
                        s.target.as_deref()?,
                        money(s.monthly?)
                    ),
                ))
            })
            .collect();
        chart
            .draw_series(marks.iter().map(|(x, y, _)| {
                Circle::new((*x, *y), 7, ShapeStyle::from(&BLACK).stroke_width(2))
            }))
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(marks.iter().enumerate().map(|(i, (x, y, label))| {
                // Alternate above and below so neighbouring labels do not collide.
                let dy = if i % 2 == 0 { top * 0.06 } else { -top * 0.06 };
                Text::new(label.clone(), (*x, (*y + dy).max(top * 0.02)), (FONT, 11))
            }))
            .map_err(|e| e.to_string())?;
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .label_font((FONT, 12))
            .draw()
            .map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}
