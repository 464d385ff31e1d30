use clap::Parser;
use deployment_manager::cli::{Cli, run};

fn main() {
    let cli = Cli::parse();
    let json = cli.json;
    if let Err(f) = run(cli) {
        if json {
            let body = match &f.spec {
                Some(s) => serde_json::json!({"error": s.to_json()}),
                None => serde_json::json!({"error": {"message": f.message}}),
            };
            eprintln!("{body}");
        } else if let Some(spec) = f.spec {
            eprintln!("{:?}", miette::Report::new(*spec));
        } else if !f.shown {
            eprintln!("error: {}", f.message);
        }
        std::process::exit(f.code);
    }
}
