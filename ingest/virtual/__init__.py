"""Virtual BLE peripherals and a bleak backend over bumble's in-process link."""
