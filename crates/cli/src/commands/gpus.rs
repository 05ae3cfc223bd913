//! `suanli gpus`: the adapters this machine offers, with the index that
//! `suanli node --gpu N` takes.

use std::process::ExitCode;

use anyhow::bail;

#[derive(clap::Args)]
pub struct Args {
    /// One JSON array of adapters instead of a table.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let adapters = suanli_gpu::list_adapters();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&adapters)?);
        return Ok(ExitCode::SUCCESS);
    }
    if adapters.is_empty() {
        bail!(
            "no Vulkan/Metal/DX12 adapter found; without a GPU install Mesa's software driver: \
             apt-get install -y mesa-vulkan-drivers libvulkan1"
        );
    }
    println!(
        "{:<5} {:<32} {:<8} {:<15} {:<13} {:<10} DRIVER",
        "INDEX", "NAME", "BACKEND", "TYPE", "PCI BUS", "TIMESTAMPS"
    );
    for a in &adapters {
        let driver = match (a.driver.is_empty(), a.driver_info.is_empty()) {
            (false, false) => format!("{} {}", a.driver, a.driver_info),
            (false, true) => a.driver.clone(),
            _ => a.driver_info.clone(),
        };
        println!(
            "{:<5} {:<32} {:<8} {:<15} {:<13} {:<10} {}",
            a.index,
            a.name,
            a.backend,
            a.device_type,
            if a.pci_bus_id.is_empty() {
                "-"
            } else {
                &a.pci_bus_id
            },
            if a.timestamps { "yes" } else { "no" },
            driver
        );
    }
    Ok(ExitCode::SUCCESS)
}
