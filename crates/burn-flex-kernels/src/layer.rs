//! What the public layer functions ([`crate::nn`]) and the layer kernels (`conv`, `dense`) both
//! need to know of a layer: the geometry of a convolution and the activation of a dense layer.

/// The activation that [`linear_then`](crate::nn::linear_then) applies to the affine map's output `z`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Activation {
    /// None: `z`.
    Identity,
    /// `max(z, 0)`, as burn's [`relu`](burn::tensor::activation::relu).
    Relu,
    /// `tanh z`, as burn's [`Tensor::tanh`](burn::tensor::Tensor::tanh).
    Tanh,
    /// ELU with the given `α`: `z` for `z > 0`, else `α(eᶻ − 1)`, as burn's [`elu`](burn::tensor::activation::elu).
    Elu(f64),
}

/// The shape of a 2-D convolution (groups 1, dilation 1) seen from the convolution: `c × h × w`
/// images in, `o × oh × ow` features out, a `kh × kw` kernel with strides `sh`, `sw` and
/// padding `ph`, `pw` before the first row and column (the padding after them is whatever
/// makes `oh`, `ow` come out).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ConvGeometry {
    pub batch: usize,
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub o: usize,
    pub oh: usize,
    pub ow: usize,
    pub kh: usize,
    pub kw: usize,
    pub sh: usize,
    pub sw: usize,
    pub ph: usize,
    pub pw: usize,
}

impl ConvGeometry {
    /// Rows of the patch matrix: `c·kh·kw`.
    pub fn k(&self) -> usize {
        self.c * self.kh * self.kw
    }

    /// Output pixels per image.
    pub fn p(&self) -> usize {
        self.oh * self.ow
    }

    /// Input values per image.
    pub fn image(&self) -> usize {
        self.c * self.h * self.w
    }

    /// Output values per image.
    pub fn feature(&self) -> usize {
        self.o * self.p()
    }

    pub(crate) fn is_empty(&self) -> bool {
        [self.batch, self.c, self.h, self.w, self.o, self.oh, self.ow].contains(&0)
    }
}
