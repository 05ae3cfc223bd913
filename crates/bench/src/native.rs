//! The matmul example's kernel on plain wgpu: what a developer would write
//! without suanli, doing the same work as the job (compile, upload, one
//! timestamped dispatch, read back).

use matmul::reference::Problem;
use suanli_gpu::{ErrorKind, GpuError};
use wgpu::util::DeviceExt;

pub(crate) struct NativeRun {
    pub(crate) c: Vec<f32>,
    pub(crate) gpu_ns: u64,
}

/// With `timestamps` false (adapter without `TIMESTAMP_QUERY`) the kernel
/// time is host wall time from submit to done, as the job's metering does.
pub(crate) fn matmul(
    device: &wgpu::Device,
    queue: &wgpu::Queue,
    p: &Problem,
    timestamps: bool,
) -> Result<NativeRun, GpuError> {
    let storage =
        wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST;
    let init = |contents: &[u8], usage| {
        device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: None,
            contents,
            usage,
        })
    };
    let params = init(
        bytemuck_u32(&[p.n, 0, 0, 0]).as_slice(),
        wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
    );
    let a = init(&f32_bytes(&p.a), storage);
    let b = init(&f32_bytes(&p.b), storage);
    let size = (p.a.len() * 4) as u64;
    let c = device.create_buffer(&wgpu::BufferDescriptor {
        label: None,
        size,
        usage: storage,
        mapped_at_creation: false,
    });
    let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: None,
        source: wgpu::ShaderSource::Wgsl(matmul::WGSL.into()),
    });
    let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
        label: None,
        layout: None,
        module: &module,
        entry_point: Some("main"),
        compilation_options: Default::default(),
        cache: None,
    });
    let group = device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: None,
        layout: &pipeline.get_bind_group_layout(0),
        entries: &[&params, &a, &b, &c]
            .iter()
            .enumerate()
            .map(|(i, buf)| wgpu::BindGroupEntry {
                binding: i as u32,
                resource: buf.as_entire_binding(),
            })
            .collect::<Vec<_>>(),
    });
    let queries = timestamps.then(|| {
        device.create_query_set(&wgpu::QuerySetDescriptor {
            label: None,
            ty: wgpu::QueryType::Timestamp,
            count: 2,
        })
    });
    let resolve = device.create_buffer(&wgpu::BufferDescriptor {
        label: None,
        size: 16,
        usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
        mapped_at_creation: false,
    });
    let readback = device.create_buffer(&wgpu::BufferDescriptor {
        label: None,
        size: size + 16,
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let mut encoder = device.create_command_encoder(&Default::default());
    {
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: None,
            timestamp_writes: queries
                .as_ref()
                .map(|query_set| wgpu::ComputePassTimestampWrites {
                    query_set,
                    beginning_of_pass_write_index: Some(0),
                    end_of_pass_write_index: Some(1),
                }),
        });
        pass.set_pipeline(&pipeline);
        pass.set_bind_group(0, &group, &[]);
        let groups = p.n.div_ceil(matmul::TILE);
        pass.dispatch_workgroups(groups, groups, 1);
    }
    if let Some(query_set) = &queries {
        encoder.resolve_query_set(query_set, 0..2, &resolve, 0);
        encoder.copy_buffer_to_buffer(&resolve, 0, &readback, size, 16);
    }
    encoder.copy_buffer_to_buffer(&c, 0, &readback, 0, size);
    let submitted = std::time::Instant::now();
    queue.submit([encoder.finish()]);
    device
        .poll(wgpu::PollType::wait_indefinitely())
        .map_err(|e| GpuError::new(ErrorKind::DeviceLost, e))?;
    let wall_ns = u64::try_from(submitted.elapsed().as_nanos()).unwrap_or(u64::MAX);
    readback.map_async(wgpu::MapMode::Read, .., |_| {});
    device
        .poll(wgpu::PollType::wait_indefinitely())
        .map_err(|e| GpuError::new(ErrorKind::DeviceLost, e))?;
    let bytes = readback
        .get_mapped_range(..)
        .map_err(|e| GpuError::new(ErrorKind::DeviceLost, e))?
        .to_vec();
    readback.unmap();
    let (out, stamps) = bytes.split_at(size as usize);
    let tick = |i: usize| u64::from_le_bytes(stamps[i * 8..i * 8 + 8].try_into().unwrap_or([0; 8]));
    let period = f64::from(queue.get_timestamp_period());
    Ok(NativeRun {
        c: out
            .chunks_exact(4)
            .map(|w| f32::from_le_bytes([w[0], w[1], w[2], w[3]]))
            .collect(),
        gpu_ns: if timestamps {
            (tick(1).saturating_sub(tick(0)) as f64 * period).round() as u64
        } else {
            wall_ns
        },
    })
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn bytemuck_u32(v: &[u32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}
