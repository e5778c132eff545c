//! Which implementation the layers run: the custom CPU kernels of this module, or
//! candle's own ops (the `*_reference` functions). The kernels run for CPU tensors
//! unless the calling thread asked for the reference ops, which checks use to show
//! that the kernels change no result (see `daemon/tests/kernels.rs`). The choice is
//! per thread because the model runs on the thread that calls it.

use std::cell::Cell;

use candle_core::Device;

thread_local! {
    static REFERENCE: Cell<bool> = const { Cell::new(false) };
}

/// Whether the custom kernels run for tensors on `device` on this thread.
pub fn custom(device: &Device) -> bool {
    device.is_cpu() && !REFERENCE.with(Cell::get)
}

/// Restores the calling thread's previous choice when dropped (also on panic).
struct Restore(bool);

impl Drop for Restore {
    fn drop(&mut self) {
        REFERENCE.with(|r| r.set(self.0));
    }
}

/// Runs `f` with candle's reference ops in place of the custom kernels on this
/// thread.
pub fn with_reference<T>(f: impl FnOnce() -> T) -> T {
    let _restore = Restore(REFERENCE.with(|r| r.replace(true)));
    f()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_ops_apply_to_this_thread_only_and_end_with_the_call() {
        assert!(custom(&Device::Cpu));
        with_reference(|| {
            assert!(!custom(&Device::Cpu));
            let other = std::thread::spawn(|| custom(&Device::Cpu)).join().unwrap();
            assert!(other, "another thread keeps the kernels");
        });
        assert!(custom(&Device::Cpu));
        let _ = std::panic::catch_unwind(|| with_reference(|| panic!("inside")));
        assert!(custom(&Device::Cpu), "restored after a panic");
    }
}
