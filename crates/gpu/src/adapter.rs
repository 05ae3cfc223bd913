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
    /// `bus:device.function` where the backend knows it (Vulkan with
    /// `VK_EXT_pci_bus_info`), else empty.
    #[serde(default)]
    pub pci_bus_id: String,
    pub metering: Metering,
    /// Its index in [`list_adapters`] (what `suanli node --gpu N` takes),
    /// so a node can say which of the machine's GPUs it drives.
    #[serde(default)]
    pub index: usize,
}

/// One adapter as `list_adapters` shows it: `index` is what
/// [`GpuOptions::adapter_index`] (and `suanli node --gpu N`) takes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdapterListing {
    pub index: usize,
    pub name: String,
    pub backend: String,
    pub device_type: String,
    pub driver: String,
    pub driver_info: String,
    pub vendor: u32,
    pub device: u32,
    /// `bus:device.function`, empty where the backend does not say.
    pub pci_bus_id: String,
    /// `TIMESTAMP_QUERY` is supported (GPU time metered with timestamps).
    pub timestamps: bool,
}

/// How to choose an adapter.
#[derive(Clone, Debug, Default)]
pub struct GpuOptions {
    /// Only consider adapters whose name contains this text (case-insensitive).
    /// Without it a real GPU is preferred over a software driver.
    pub adapter_name: Option<String>,
    /// Take the adapter with this index in [`list_adapters`]; when set,
    /// `adapter_name` is not consulted.
    pub adapter_index: Option<usize>,
    /// Measure with host wall time even when timestamps are available
    /// (for comparing the two methods).
    pub force_wall_metering: bool,
}

/// One adapter, chosen once per process. Slots (devices) are created on it.
pub struct Gpu {
    instance: wgpu::Instance,
    adapter: std::sync::Mutex<Option<wgpu::Adapter>>,
    /// Identifies the chosen adapter among a fresh enumeration.
    key: AdapterKey,
    info: AdapterInfo,
}

impl Gpu {
    /// Picks an adapter: discrete, then integrated, then virtual GPUs, then CPU
    /// drivers such as lavapipe.
    pub fn open(options: &GpuOptions) -> Result<Gpu, GpuError> {
        let instance = new_instance();
        let adapters = enumerate_sorted(&instance);
        let (index, adapter) = match options.adapter_index {
            Some(index) => {
                let available = describe_indexes(&adapters);
                adapters.into_iter().enumerate().nth(index).ok_or_else(|| {
                    GpuError::new(
                        ErrorKind::NoAdapter,
                        format!(
                            "no GPU with index {index}; available: {available} (see `suanli gpus`)"
                        ),
                    )
                })?
            }
            None => {
                let wanted = options.adapter_name.as_ref().map(|n| n.to_lowercase());
                let seen: Vec<String> = adapters.iter().map(|a| a.get_info().name).collect();
                adapters
                    .into_iter()
                    .enumerate()
                    .filter(|(_, a)| {
                        let info = a.get_info();
                        wanted
                            .as_ref()
                            .is_none_or(|w| info.name.to_lowercase().contains(w))
                    })
                    .min_by_key(|(_, a)| device_type_rank(a.get_info().device_type))
                    .ok_or_else(|| {
                        GpuError::new(
                            ErrorKind::NoAdapter,
                            format!(
                                "no matching Vulkan/Metal/DX12 adapter (found: [{}]); without a GPU \
                                 install Mesa's software driver: apt-get install -y \
                                 mesa-vulkan-drivers libvulkan1",
                                seen.join(", ")
                            ),
                        )
                    })?
            }
        };
        let raw = adapter.get_info();
        let key = AdapterKey::of(&raw);
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
            pci_bus_id: raw.device_pci_bus_id,
            metering,
            index,
        };
        tracing::info!(adapter = %info.name, backend = %info.backend, pci_bus_id = %info.pci_bus_id, metering = info.metering.as_str(), "gpu adapter chosen");
        Ok(Gpu {
            instance,
            key,
            adapter: std::sync::Mutex::new(Some(adapter)),
            info,
        })
    }

    pub fn info(&self) -> &AdapterInfo {
        &self.info
    }

    /// Creates a slot: one device and queue that jobs on this slot share, one
    /// job at a time. Costly (tens of ms on lavapipe, more on real drivers); keep
    /// slots for the process's life.
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
            None => enumerate_sorted(&self.instance)
                .into_iter()
                .find(|a| AdapterKey::of(&a.get_info()) == self.key)
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

/// Every adapter this machine offers, in index order (see [`adapter_order`]).
/// Creating no device, this is cheap; it does load the GPU drivers.
pub fn list_adapters() -> Vec<AdapterListing> {
    let instance = new_instance();
    enumerate_sorted(&instance)
        .iter()
        .enumerate()
        .map(|(index, a)| {
            let raw = a.get_info();
            AdapterListing {
                index,
                name: raw.name,
                backend: raw.backend.to_str().to_owned(),
                device_type: device_type_name(raw.device_type).to_owned(),
                driver: raw.driver,
                driver_info: raw.driver_info,
                vendor: raw.vendor,
                device: raw.device,
                pci_bus_id: raw.device_pci_bus_id,
                timestamps: a.features().contains(wgpu::Features::TIMESTAMP_QUERY),
            }
        })
        .collect()
}

fn new_instance() -> wgpu::Instance {
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
    desc.backends = wgpu::Backends::PRIMARY;
    desc.flags = wgpu::InstanceFlags::empty();
    wgpu::Instance::new(desc)
}

/// The adapters in index order.
fn enumerate_sorted(instance: &wgpu::Instance) -> Vec<wgpu::Adapter> {
    let adapters = pollster::block_on(instance.enumerate_adapters(wgpu::Backends::PRIMARY));
    let keys: Vec<AdapterKey> = adapters
        .iter()
        .map(|a| AdapterKey::of(&a.get_info()))
        .collect();
    let mut slots: Vec<Option<wgpu::Adapter>> = adapters.into_iter().map(Some).collect();
    adapter_order(&keys)
        .into_iter()
        .filter_map(|i| slots[i].take())
        .collect()
}

fn describe_indexes(adapters: &[wgpu::Adapter]) -> String {
    if adapters.is_empty() {
        return "none (no Vulkan/Metal/DX12 adapter found)".into();
    }
    adapters
        .iter()
        .enumerate()
        .map(|(i, a)| format!("{i} ({})", a.get_info().name))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What orders adapters and finds one again in a fresh enumeration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct AdapterKey {
    pub(crate) backend: wgpu::Backend,
    pub(crate) device_type: wgpu::DeviceType,
    pub(crate) name: String,
    pub(crate) pci_bus_id: String,
    pub(crate) vendor: u32,
    pub(crate) device: u32,
}

impl AdapterKey {
    fn of(info: &wgpu::AdapterInfo) -> AdapterKey {
        AdapterKey {
            backend: info.backend,
            device_type: info.device_type,
            name: info.name.clone(),
            pci_bus_id: info.device_pci_bus_id.clone(),
            vendor: info.vendor,
            device: info.device,
        }
    }
}

/// The order of adapter indexes: by backend, then device type (discrete
/// first), name, PCI bus id, vendor and device id; ties keep wgpu's
/// enumeration order. Returns positions into `keys`, index 0 first.
pub(crate) fn adapter_order(keys: &[AdapterKey]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..keys.len()).collect();
    order.sort_by(|&a, &b| {
        let (a, b) = (&keys[a], &keys[b]);
        (
            a.backend.to_str(),
            device_type_rank(a.device_type),
            &a.name,
            &a.pci_bus_id,
            a.vendor,
            a.device,
        )
            .cmp(&(
                b.backend.to_str(),
                device_type_rank(b.device_type),
                &b.name,
                &b.pci_bus_id,
                b.vendor,
                b.device,
            ))
    });
    order
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

#[cfg(test)]
mod tests {
    use super::*;

    fn key(backend: wgpu::Backend, t: wgpu::DeviceType, name: &str, bus: &str) -> AdapterKey {
        AdapterKey {
            backend,
            device_type: t,
            name: name.into(),
            pci_bus_id: bus.into(),
            vendor: 0x10de,
            device: 1,
        }
    }

    #[test]
    fn adapters_are_ordered_by_backend_type_name_and_bus_whatever_the_enumeration_order() {
        use wgpu::{Backend::*, DeviceType::*};
        let keys = vec![
            key(Vulkan, Cpu, "llvmpipe", ""),
            key(Vulkan, DiscreteGpu, "NVIDIA H100", "0000:41:00.0"),
            key(Gl, DiscreteGpu, "NVIDIA H100", "0000:01:00.0"),
            key(Vulkan, DiscreteGpu, "NVIDIA H100", "0000:01:00.0"),
            key(Vulkan, IntegratedGpu, "Intel UHD", "0000:00:02.0"),
            key(Vulkan, DiscreteGpu, "AMD Radeon", "0000:81:00.0"),
        ];
        let order = adapter_order(&keys);
        let names: Vec<String> = order
            .iter()
            .map(|&i| {
                format!(
                    "{}/{}/{}",
                    keys[i].backend.to_str(),
                    keys[i].name,
                    keys[i].pci_bus_id
                )
            })
            .collect();
        assert_eq!(
            names,
            [
                "gl/NVIDIA H100/0000:01:00.0",
                "vulkan/AMD Radeon/0000:81:00.0",
                "vulkan/NVIDIA H100/0000:01:00.0",
                "vulkan/NVIDIA H100/0000:41:00.0",
                "vulkan/Intel UHD/0000:00:02.0",
                "vulkan/llvmpipe/",
            ]
        );
        // Any enumeration order gives the same indexes.
        let mut reversed = keys.clone();
        reversed.reverse();
        let again: Vec<&AdapterKey> = adapter_order(&reversed)
            .iter()
            .map(|&i| &reversed[i])
            .collect();
        let first: Vec<&AdapterKey> = order.iter().map(|&i| &keys[i]).collect();
        assert_eq!(again, first);
        // Identical keys keep the enumeration order.
        let twins = vec![
            key(Vulkan, DiscreteGpu, "X", ""),
            key(Vulkan, DiscreteGpu, "X", ""),
        ];
        assert_eq!(adapter_order(&twins), [0, 1]);
    }

    #[test]
    fn listing_indexes_are_dense_and_each_index_opens_that_adapter() {
        let list = list_adapters();
        for (i, a) in list.iter().enumerate() {
            assert_eq!(a.index, i);
        }
        let Some(first) = list.first() else {
            return; // no adapter on this machine
        };
        let gpu = Gpu::open(&GpuOptions {
            adapter_index: Some(0),
            adapter_name: Some("no such adapter name".into()),
            ..GpuOptions::default()
        })
        .expect("index 0 opens");
        assert_eq!(gpu.info().name, first.name);
        assert_eq!(gpu.info().pci_bus_id, first.pci_bus_id);
        let err = Gpu::open(&GpuOptions {
            adapter_index: Some(list.len()),
            ..GpuOptions::default()
        })
        .err()
        .expect("out of range");
        assert_eq!(err.kind, ErrorKind::NoAdapter);
        assert!(
            err.message
                .contains(&format!("no GPU with index {}", list.len())),
            "{}",
            err.message
        );
        assert!(err.message.contains("0 ("), "{}", err.message);
    }
}
