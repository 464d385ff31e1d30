//! Human output: tables that fit the terminal, colour only when wanted
//! (`NO_COLOR` and non-terminals get none).

use comfy_table::{ContentArrangement, Table};
use std::io::IsTerminal;

pub fn color_enabled() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stdout().is_terminal()
}

pub fn table(headers: &[&str]) -> Table {
    let mut t = Table::new();
    t.set_content_arrangement(ContentArrangement::Dynamic);
    if !color_enabled() {
        t.force_no_tty();
    }
    t.set_header(headers.to_vec());
    t
}

pub fn paint(text: &str, code: &str) -> String {
    if color_enabled() {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_string()
    }
}

pub fn score_cell(score: u32, blocked: bool) -> String {
    let code = if blocked {
        "31"
    } else if score >= 75 {
        "32"
    } else if score >= 50 {
        "33"
    } else {
        "35"
    };
    paint(
        &if blocked {
            "0 ✗".to_string()
        } else {
            score.to_string()
        },
        code,
    )
}

pub fn money(x: f64) -> String {
    format!("${x:.2}")
}

pub fn json<T: serde::Serialize>(v: &T) {
    println!(
        "{}",
        serde_json::to_string_pretty(v).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    );
}
