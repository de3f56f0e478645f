//! `control-plane up DIR | down DIR`: the real control plane for people
//! (`scripts/control-plane.sh`, which builds the binaries first), the same [`ControlPlane`]
//! the tests start.

use std::path::Path;
use std::process::ExitCode;

use kuvert_testkit::ControlPlane;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["up", dir] => {
            let plane = ControlPlane::start_in(Path::new(dir)).await;
            eprintln!(
                "control-plane: {} ready in {:.1} s (logs in {})",
                plane.url(),
                plane.startup().as_secs_f64(),
                plane.dir().display()
            );
            println!("{}", plane.admin_kubeconfig().display());
            plane.detach();
            ExitCode::SUCCESS
        }
        ["down", dir] => {
            ControlPlane::stop_detached(Path::new(dir));
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("usage: control-plane up DIR | down DIR");
            ExitCode::from(2)
        }
    }
}
