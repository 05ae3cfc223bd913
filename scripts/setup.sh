#!/usr/bin/env bash
# Installs what suanli needs on a fresh Debian machine with Rust: the
# wasm32-wasip2 target for jobs, and Mesa's Vulkan driver (lavapipe) when the
# machine has no Vulkan GPU driver.
set -euo pipefail

rustup target add wasm32-wasip2

have_vulkan_driver() {
    ldconfig -p 2>/dev/null | grep -q 'libvulkan\.so\.1' || return 1
    ls /usr/share/vulkan/icd.d/*.json /etc/vulkan/icd.d/*.json /usr/local/share/vulkan/icd.d/*.json \
        ${VK_DRIVER_FILES:-} ${VK_ICD_FILENAMES:-} >/dev/null 2>&1
}

if ! have_vulkan_driver; then
    echo "setup: no Vulkan driver found; installing Mesa's (lavapipe runs compute on the CPU)"
    sudo=""
    if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq mesa-vulkan-drivers libvulkan1 >/dev/null
fi
# Mesa prints a harmless XDG_RUNTIME_DIR warning per Vulkan instance without this.
echo "setup: ok"
