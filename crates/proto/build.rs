//! Compiles `proto/baton/v1/*.proto` with protox, so building needs no system `protoc`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = "../../proto";
    let files = ["baton/v1/tasks.proto", "baton/v1/runner.proto", "baton/v1/schedules.proto"];
    for file in files {
        println!("cargo:rerun-if-changed={root}/{file}");
    }
    let fds = protox::compile(files, [root])?;
    // Kept for gRPC server reflection, so ordinary tools can list and call the services.
    let out = std::env::var("OUT_DIR")?;
    std::fs::write(format!("{out}/baton_descriptor.bin"), prost::Message::encode_to_vec(&fds))?;
    tonic_prost_build::configure().compile_fds(fds)?;
    Ok(())
}
