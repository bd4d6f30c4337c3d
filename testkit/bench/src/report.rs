//! Figures, their comparison with the raw baseline, and the report (plain or Markdown).

use std::fmt::Write as _;
use std::time::Duration;

use crate::machine::Machine;

/// One measured side of a comparison.
#[derive(Debug, Clone)]
pub(crate) enum Figure {
    /// `items` processed in `elapsed`.
    Rate {
        items: u64,
        unit: &'static str,
        elapsed: Duration,
    },
    /// One latency per operation.
    Latency { samples: Vec<Duration> },
}

impl Figure {
    pub(crate) fn rate(items: u64, unit: &'static str, elapsed: Duration) -> Figure {
        Figure::Rate {
            items,
            unit,
            elapsed,
        }
    }

    pub(crate) fn latency(mut samples: Vec<Duration>) -> Figure {
        samples.sort_unstable();
        Figure::Latency { samples }
    }

    fn per_second(&self) -> f64 {
        match self {
            Figure::Rate { items, elapsed, .. } => *items as f64 / elapsed.as_secs_f64().max(1e-9),
            Figure::Latency { samples } => {
                samples.len() as f64 / samples.iter().sum::<Duration>().as_secs_f64().max(1e-9)
            }
        }
    }

    /// The `q` quantile (0..=1) of a latency figure.
    pub(crate) fn quantile(&self, q: f64) -> Duration {
        match self {
            Figure::Latency { samples } if !samples.is_empty() => {
                let index = ((samples.len() - 1) as f64 * q).round() as usize;
                samples[index.min(samples.len() - 1)]
            }
            _ => Duration::ZERO,
        }
    }

    pub(crate) fn describe(&self) -> String {
        match self {
            Figure::Rate {
                items,
                unit,
                elapsed,
            } => format!(
                "{} {unit}/s ({} {unit} in {:.2} s)",
                thousands(self.per_second().round() as u64),
                thousands(*items),
                elapsed.as_secs_f64()
            ),
            Figure::Latency { samples } => format!(
                "p50 {}, p99 {}, max {} ({} samples, {} /s)",
                millis(self.quantile(0.5)),
                millis(self.quantile(0.99)),
                millis(samples.last().copied().unwrap_or_default()),
                thousands(samples.len() as u64),
                thousands(self.per_second().round() as u64),
            ),
        }
    }
}

/// A product path against its raw baseline.
#[derive(Debug, Clone)]
pub(crate) struct Comparison {
    pub(crate) title: String,
    pub(crate) product_label: String,
    pub(crate) raw_label: String,
    pub(crate) product: Figure,
    pub(crate) raw: Figure,
    /// The smallest acceptable [`ratio`](Self::ratio), if the issue set one.
    pub(crate) goal: Option<f64>,
    /// Where the product's wall time went: (part, calls, time inside).
    pub(crate) breakdown: Vec<(String, u64, Duration)>,
    pub(crate) notes: Vec<String>,
}

impl Comparison {
    /// Product speed as a fraction of the raw speed: rates divided, or for
    /// latencies the raw p50 over the product p50.
    pub(crate) fn ratio(&self) -> f64 {
        match (&self.product, &self.raw) {
            (Figure::Latency { .. }, Figure::Latency { .. }) => {
                self.raw.quantile(0.5).as_secs_f64()
                    / self.product.quantile(0.5).as_secs_f64().max(1e-12)
            }
            _ => self.product.per_second() / self.raw.per_second().max(1e-12),
        }
    }

    fn ratio_text(&self) -> String {
        match (&self.product, &self.raw) {
            (Figure::Latency { .. }, Figure::Latency { .. }) => {
                let p99 = self.raw.quantile(0.99).as_secs_f64()
                    / self.product.quantile(0.99).as_secs_f64().max(1e-12);
                format!("{:.2} at p50, {p99:.2} at p99", self.ratio())
            }
            _ => format!("{:.2}", self.ratio()),
        }
    }

    fn goal_text(&self) -> String {
        match self.goal {
            Some(goal) if self.ratio() >= goal => format!(">= {goal:.2}: met"),
            Some(goal) => format!(">= {goal:.2}: MISSED"),
            None => "none set".into(),
        }
    }

    fn wall(&self) -> Duration {
        match &self.product {
            Figure::Rate { elapsed, .. } => *elapsed,
            Figure::Latency { samples } => samples.iter().sum(),
        }
    }
}

pub(crate) fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

pub(crate) fn millis(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn share(part: Duration, wall: Duration) -> String {
    format!(
        "{:.0}%",
        100.0 * part.as_secs_f64() / wall.as_secs_f64().max(1e-9)
    )
}

/// The report for a terminal.
pub(crate) fn plain(machine: &Machine, results: &[Comparison], total: Duration) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "machine: {}", machine.one_line());
    for c in results {
        let _ = writeln!(s, "\n{}", c.title);
        let _ = writeln!(s, "  product  {}", c.product.describe());
        let _ = writeln!(s, "           {}", c.product_label);
        let _ = writeln!(s, "  raw      {}", c.raw.describe());
        let _ = writeln!(s, "           {}", c.raw_label);
        let _ = writeln!(
            s,
            "  product/raw {} (goal {})",
            c.ratio_text(),
            c.goal_text()
        );
        if !c.breakdown.is_empty() {
            let _ = writeln!(
                s,
                "  where the product's time goes (inside each port call):"
            );
            for (part, calls, time) in &c.breakdown {
                let _ = writeln!(
                    s,
                    "    {part:<48} {:>8} calls {:>9.3} s {:>5}",
                    thousands(*calls),
                    time.as_secs_f64(),
                    share(*time, c.wall())
                );
            }
        }
        for note in &c.notes {
            let _ = writeln!(s, "  note: {note}");
        }
    }
    let _ = writeln!(s, "\ntotal run time {:.1} s", total.as_secs_f64());
    s
}

/// The report for BENCHMARKS.md.
pub(crate) fn markdown(
    machine: &Machine,
    results: &[Comparison],
    command_line: &str,
    total: Duration,
) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "Command: `cargo run --release -p spacepos-bench -- {command_line}` \
         (total run time {:.0} s)\n",
        total.as_secs_f64()
    );
    let _ = writeln!(s, "| machine | |\n| --- | --- |");
    let _ = writeln!(s, "| CPU | {} x {} |", machine.cores, machine.cpu);
    let _ = writeln!(s, "| RAM | {} |", machine.ram);
    let _ = writeln!(s, "| OS | {} (kernel {}) |", machine.os, machine.kernel);
    let _ = writeln!(
        s,
        "| compiler | {}, {} build |",
        machine.rustc, machine.profile
    );
    let _ = writeln!(
        s,
        "| SQLite | {} in the product (sqlx's bundled libsqlite3), sqlite3 CLI {} |",
        machine.sqlite_lib, machine.sqlite_cli
    );
    let _ = writeln!(s, "| RabbitMQ | {} on 127.0.0.1 |", machine.rabbitmq);
    let _ = writeln!(s, "| load average at start | {} |\n", machine.load_at_start);

    let _ = writeln!(
        s,
        "| benchmark | product | raw baseline | product / raw | goal |\n| --- | --- | --- | --- | --- |"
    );
    for c in results {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} |",
            c.title,
            c.product.describe(),
            c.raw.describe(),
            c.ratio_text(),
            c.goal_text()
        );
    }
    for c in results {
        let _ = writeln!(s, "\n### {}\n", c.title);
        let _ = writeln!(s, "- product: {}", c.product_label);
        let _ = writeln!(s, "- raw baseline: {}", c.raw_label);
        for note in &c.notes {
            let _ = writeln!(s, "- {note}");
        }
        if !c.breakdown.is_empty() {
            let _ = writeln!(
                s,
                "\nWhere the product's time goes (time inside each port call; \
                 calls that overlap may add up to more than 100%):\n"
            );
            let _ = writeln!(
                s,
                "| part | calls | time | share of wall |\n| --- | ---: | ---: | ---: |"
            );
            for (part, calls, time) in &c.breakdown {
                let _ = writeln!(
                    s,
                    "| {part} | {} | {:.3} s | {} |",
                    thousands(*calls),
                    time.as_secs_f64(),
                    share(*time, c.wall())
                );
            }
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }

    #[test]
    fn ratios() {
        let c = Comparison {
            title: "t".into(),
            product_label: String::new(),
            raw_label: String::new(),
            product: Figure::rate(100, "rows", Duration::from_secs(2)),
            raw: Figure::rate(100, "rows", Duration::from_secs(1)),
            goal: Some(0.5),
            breakdown: Vec::new(),
            notes: Vec::new(),
        };
        assert!((c.ratio() - 0.5).abs() < 1e-9);
        assert!(c.goal_text().contains("met"));
        let l = Comparison {
            product: Figure::latency(vec![Duration::from_millis(4); 3]),
            raw: Figure::latency(vec![Duration::from_millis(2); 3]),
            goal: None,
            ..c
        };
        assert!((l.ratio() - 0.5).abs() < 1e-9);
    }
}
