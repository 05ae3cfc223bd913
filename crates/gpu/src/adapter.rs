use serde::{Deserialize, Serialize};

use crate::{ErrorKind, GpuError, Slot};

/// How a job's GPU time is measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Metering {
    /// GPU timestamps written at the beginning and end of every compute pass.
    Timestamp,
    /// The adapter lacks `TIMESTAMP_QUERY`: host wall time from submit to work done.
    Wall,
}

impl Metering {
    pub fn as_str(self) -> &'static str {
        match self {
            Metering::Timestamp => "timestamp",
            Metering::Wall => "wall",
        }
    }
}

/// The adapter jobs run on, as shown to jobs, users and (later) the coordinator.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdapterInfo {
    pub name: String,
    pub backend: String,
    pub device_type: String,
    pub driver: String,
    pub driver_info: String,
    pub vendor: u32,
    pub device: u32,
    pub metering: Metering,
}

/// How to choose an adapter.
#[derive(Clone, Debug, Default)]
pub struct GpuOptions {
    /// Only consider adapters whose name contains this text (case-insensitive).
    /// Without it a real GPU is preferred over a software driver.
    pub adapter_name: Option<String>,
    /// Measure with host wall time even when timestamps are available
    /// (for comparing the two methods).
    pub force_wall_metering: bool,
}

/// One adapter, chosen once per process. Slots (devices) are created on it.
pub struct Gpu {
    instance: wgpu::Instance,
    adapter: std::sync::Mutex<Option<wgpu::Adapter>>,
    /// Identifies the chosen adapter among a fresh enumeration.
    key: (String, u32, u32, wgpu::Backend),
    info: AdapterInfo,
}

impl Gpu {
    /// Picks an adapter: discrete, then integrated, then virtual GPUs, then CPU
    /// drivers such as lavapipe.
    pub fn open(options: &GpuOptions) -> Result<Gpu, GpuError> {
        let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
        desc.backends = wgpu::Backends::PRIMARY;
        desc.flags = wgpu::InstanceFlags::empty();
        let instance = wgpu::Instance::new(desc);
        let adapters = pollster::block_on(instance.enumerate_adapters(wgpu::Backends::PRIMARY));
        let wanted = options.adapter_name.as_ref().map(|n| n.to_lowercase());
        let seen: Vec<String> = adapters.iter().map(|a| a.get_info().name).collect();
        let adapter = adapters
            .into_iter()
            .filter(|a| {
                let info = a.get_info();
                wanted
                    .as_ref()
                    .is_none_or(|w| info.name.to_lowercase().contains(w))
            })
            .min_by_key(|a| device_type_rank(a.get_info().device_type))
            .ok_or_else(|| {
                GpuError::new(
                    ErrorKind::NoAdapter,
                    format!(
                        "no matching Vulkan/Metal/DX12 adapter (found: [{}]); without a GPU install \
                         Mesa's software driver: apt-get install -y mesa-vulkan-drivers libvulkan1",
                        seen.join(", ")
                    ),
                )
            })?;
        let raw = adapter.get_info();
        let raw_key = raw.clone();
        let timestamps = adapter.features().contains(wgpu::Features::TIMESTAMP_QUERY);
        let metering = if timestamps && !options.force_wall_metering {
            Metering::Timestamp
        } else {
            Metering::Wall
        };
        let info = AdapterInfo {
            name: raw.name,
            backend: raw.backend.to_str().to_owned(),
            device_type: device_type_name(raw.device_type).to_owned(),
            driver: raw.driver,
            driver_info: raw.driver_info,
            vendor: raw.vendor,
            device: raw.device,
            metering,
        };
        tracing::info!(adapter = %info.name, backend = %info.backend, metering = info.metering.as_str(), "gpu adapter chosen");
        Ok(Gpu {
            instance,
            key: (
                raw_key.name,
                raw_key.vendor,
                raw_key.device,
                raw_key.backend,
            ),
            adapter: std::sync::Mutex::new(Some(adapter)),
            info,
        })
    }

    pub fn info(&self) -> &AdapterInfo {
        &self.info
    }

    /// Creates a slot: one device and queue that jobs on this slot share, one
    /// job at a time. Costly (~0.8 s on lavapipe); keep slots for the process's life.
    ///
    /// WebGPU gives one device per adapter object, so every slot after the
    /// first gets a fresh adapter object for the same physical GPU.
    pub fn new_slot(&self) -> Result<Slot, GpuError> {
        let first = self
            .adapter
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        let adapter = match first {
            Some(a) => a,
            None => pollster::block_on(self.instance.enumerate_adapters(wgpu::Backends::PRIMARY))
                .into_iter()
                .find(|a| {
                    let i = a.get_info();
                    (i.name, i.vendor, i.device, i.backend) == self.key
                })
                .ok_or_else(|| {
                    GpuError::new(
                        ErrorKind::NoAdapter,
                        format!("adapter {} disappeared", self.info.name),
                    )
                })?,
        };
        Slot::new(&adapter, self.info.clone())
    }
}

fn device_type_rank(t: wgpu::DeviceType) -> u8 {
    match t {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Cpu => 3,
        wgpu::DeviceType::Other => 4,
    }
}

fn device_type_name(t: wgpu::DeviceType) -> &'static str {
    match t {
        wgpu::DeviceType::DiscreteGpu => "discrete-gpu",
        wgpu::DeviceType::IntegratedGpu => "integrated-gpu",
        wgpu::DeviceType::VirtualGpu => "virtual-gpu",
        wgpu::DeviceType::Cpu => "cpu",
        wgpu::DeviceType::Other => "other",
    }
}
