//! Every name a trial is written with, as a Rust enum: the strings live here and
//! nowhere else. Each enum lists its variants in [`ALL`](Preset::ALL), parses from
//! its name (an error lists the known ones) and serialises as that name.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A name that is not one of an enum's variants.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} '{name}' (known: {})", known.join(", "))]
pub struct UnknownName {
    /// What kind of name it was meant to be (`model`, `data set`, ...).
    pub what: &'static str,
    /// The name given.
    pub name: String,
    /// The names that exist.
    pub known: &'static [&'static str],
}

/// Defines a named enum: variants with their names, `ALL`, `NAMES`, `as_str`,
/// `Display`, `FromStr` and serde as the name.
macro_rules! named {
    ($(#[$m:meta])* $t:ident, $what:literal, { $($(#[$vm:meta])* $v:ident => $s:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $t { $($(#[$vm])* $v),+ }

        impl $t {
            /// Every variant, in their defining order.
            pub const ALL: &'static [$t] = &[$($t::$v),+];
            /// Every name, in the same order.
            pub const NAMES: &'static [&'static str] = &[$($s),+];
            /// What these names are, in messages.
            pub const WHAT: &'static str = $what;

            /// The name as written in specs, files and on the command line.
            pub fn as_str(self) -> &'static str {
                match self { $($t::$v => $s),+ }
            }
        }

        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $t {
            type Err = UnknownName;

            fn from_str(s: &str) -> Result<Self, UnknownName> {
                match s {
                    $($s => Ok($t::$v),)+
                    _ => Err(UnknownName { what: $what, name: s.to_string(), known: Self::NAMES }),
                }
            }
        }

        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}
pub(crate) use named;

named!(
    /// An architecture family.
    Family, "model family", {
        /// VoVNet (Lee et al. 2019, arXiv:1904.09730).
        Vovnet => "vovnet",
        /// DenseNet (Huang et al. 2017, arXiv:1608.06993).
        Densenet => "densenet",
    }
);

named!(
    /// The benchmark's model presets, in the published table's order.
    Preset, "model", {
        /// DenseNet-Koshian with 2 dense blocks.
        DensenetKoshian2 => "densenet-koshian-2",
        /// DenseNet-Koshian with 3 dense blocks.
        DensenetKoshian3 => "densenet-koshian-3",
        /// DenseNet-Koshian with 4 dense blocks.
        DensenetKoshian4 => "densenet-koshian-4",
        /// DenseNet-Koshian with 5 dense blocks.
        DensenetKoshian5 => "densenet-koshian-5",
        /// DenseNet-Koshian with 6 dense blocks.
        DensenetKoshian6 => "densenet-koshian-6",
        /// VoVNet-27-slim.
        Vovnet27Slim => "vovnet-27-slim",
        /// VoVNet-39.
        Vovnet39 => "vovnet-39",
        /// VoVNet-57.
        Vovnet57 => "vovnet-57",
    }
);

impl Preset {
    /// The family the preset belongs to.
    pub fn family(self) -> Family {
        match self {
            Preset::DensenetKoshian2
            | Preset::DensenetKoshian3
            | Preset::DensenetKoshian4
            | Preset::DensenetKoshian5
            | Preset::DensenetKoshian6 => Family::Densenet,
            Preset::Vovnet27Slim | Preset::Vovnet39 | Preset::Vovnet57 => Family::Vovnet,
        }
    }
}

named!(
    /// The data sets vov knows.
    DatasetName, "data set", {
        /// CIFAR-10, official binary version: 32x32 RGB, 10 classes.
        Cifar10 => "cifar10",
        /// Fashion-MNIST (IDX files), zero-padded from 28x28 to 32x32, grayscale.
        FashionMnist => "fashion-mnist",
        /// Seeded, learnable synthetic images: 32x32 RGB, 10 classes, any size.
        Synthetic => "synthetic",
    }
);

/// The data root of a run on this machine (`vovd train`, `vovd task`, a local
/// `vovctl sweep`, and `vovd data` without a daemon configuration), relative to
/// the directory the command runs in.
pub const LOCAL_DATA_DIR: &str = "data";

named!(
    /// Optimizers, with Keras' update rules.
    Optimizer, "optimizer", {
        /// Adam (beta1 0.9, beta2 0.999, epsilon 1e-7, Keras' epsilon placement).
        Adam => "adam",
        /// Adam with decoupled weight decay.
        Adamw => "adamw",
        /// SGD with momentum (optionally Nesterov).
        Sgd => "sgd",
    }
);

named!(
    /// How `weight_decay` is applied.
    WdMode, "weight decay mode", {
        /// `weight_decay * sum(w^2)` over conv and dense kernels added to the loss,
        /// like Keras' `kernel_regularizer=l2(weight_decay)`.
        L2 => "l2",
        /// `w -= lr * weight_decay * w` on kernels at each step, outside the gradient.
        Decoupled => "decoupled",
    }
);

impl WdMode {
    /// The mode a trial gets when it names none: decoupled for AdamW, else L2.
    pub fn default_for(optimizer: Optimizer) -> WdMode {
        match optimizer {
            Optimizer::Adamw => WdMode::Decoupled,
            Optimizer::Adam | Optimizer::Sgd => WdMode::L2,
        }
    }
}

named!(
    /// Augmentation policies.
    Augmentation, "augmentation", {
        /// No augmentation.
        None => "none",
        /// Random horizontal flip.
        Flip => "flip",
        /// Random shift up to 4 px, nearest fill (Keras).
        Shift => "shift",
        /// Zero-pad 4 px and random crop (torchvision).
        Crop => "crop",
        /// Shift + flip: the published setting.
        Standard => "standard",
        /// Crop + flip.
        StandardCrop => "standard-crop",
    }
);

named!(
    /// The inference timings a trial can take over the validation set.
    Timing, "timing", {
        /// Batch-1 latency over every validation image.
        Batch1 => "batch1",
        /// Batch-32 throughput over every validation image.
        Batch32 => "batch32",
    }
);

named!(
    /// Which trained weights a trial keeps when it ends.
    KeepWeights, "weights to keep", {
        /// None: the weights go with the trial's checkpoints.
        None => "none",
        /// The weights after the last epoch.
        Final => "final",
        /// The weights at the epoch of the best validation accuracy (MaxValAcc).
        Best => "best",
    }
);

named!(
    /// Where a trial may run.
    DeviceRequirement, "device requirement", {
        /// Any device the host has (a GPU slot on a GPU host).
        Any => "any",
        /// CPU only.
        Cpu => "cpu",
        /// A GPU; CPU-only hosts refuse it.
        Gpu => "gpu",
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_list_alternatives() {
        for p in Preset::ALL {
            assert_eq!(p.as_str().parse::<Preset>().unwrap(), *p);
        }
        assert_eq!(Preset::ALL.len(), Preset::NAMES.len());
        let err = "rmsprop".parse::<Optimizer>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown optimizer 'rmsprop' (known: adam, adamw, sgd)"
        );
        let json = serde_json::to_string(&Augmentation::StandardCrop).unwrap();
        assert_eq!(json, "\"standard-crop\"");
        assert!(serde_json::from_str::<Augmentation>("\"sideways\"").is_err());
    }

    #[test]
    fn families() {
        assert_eq!(Preset::Vovnet39.family(), Family::Vovnet);
        assert_eq!(Preset::DensenetKoshian6.family(), Family::Densenet);
        assert_eq!(WdMode::default_for(Optimizer::Adamw), WdMode::Decoupled);
    }
}
