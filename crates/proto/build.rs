//! Compiles `proto/baton/v1/*.proto` with protox, so building needs no system `protoc`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = "../../proto";
    let files = ["baton/v1/tasks.proto", "baton/v1/runner.proto"];
    for file in files {
        println!("cargo:rerun-if-changed={root}/{file}");
    }
    let fds = protox::compile(files, [root])?;
    tonic_prost_build::configure().compile_fds(fds)?;
    Ok(())
}
