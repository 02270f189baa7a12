import CLoomSIMD
import Foundation

// The update rules of the Keras optimizers on n consecutive elements of one weight: w is the
// current value, g its gradient, the slots (m, v, ...) are updated in place, and the new value
// goes to out (which may be w). Elements are independent, so a weight can be updated in parts
// on several threads. The operations and their order are Keras's, so the numbers are too.

/// out = w − lr·g
public func sgdUpdate(_ n: Int, out: UnsafeMutablePointer<Float>, w: UnsafePointer<Float>, g: UnsafePointer<Float>,
                      learningRate lr: Float) {
    let vector = n & ~7
    for i in stride(from: 0, to: vector, by: 8) { store(load(w + i) - load(g + i) * lr, out + i) }
    for i in vector..<n { out[i] = w[i] - g[i] * lr }
}

/// m = μ·m − lr·g; out = w + m, or with Nesterov out = w + μ·m − lr·g
public func momentumUpdate(_ n: Int, out: UnsafeMutablePointer<Float>, w: UnsafePointer<Float>, g: UnsafePointer<Float>,
                           m: UnsafeMutablePointer<Float>, learningRate lr: Float, momentum: Float, nesterov: Bool) {
    for i in 0..<n {
        let step = g[i] * lr
        m[i] = m[i] * momentum - step
        out[i] = nesterov ? w[i] + (m[i] * momentum - step) : w[i] + m[i]
    }
}

/// v = ρ·v + (1 − ρ)·g²; out = w − lr·g / √(v + ε)
public func rmspropUpdate(_ n: Int, out: UnsafeMutablePointer<Float>, w: UnsafePointer<Float>, g: UnsafePointer<Float>,
                          velocity: UnsafeMutablePointer<Float>, learningRate lr: Float, rho: Float, epsilon: Float) {
    let vector = n & ~7
    for i in stride(from: 0, to: vector, by: 8) {
        let gi = load(g + i)
        let v = rho * load(velocity + i) + (1 - rho) * (gi * gi)
        store(v, velocity + i)
        store(load(w + i) - (lr * gi) / loom_sqrt8(v + epsilon), out + i)
    }
    for i in vector..<n {
        let v = rho * velocity[i] + (1 - rho) * (g[i] * g[i])
        velocity[i] = v
        out[i] = w[i] - (lr * g[i]) / (v + epsilon).squareRoot()
    }
}

/// RMSprop with momentum m and / or centering by the average gradient a:
/// v = ρ·v + (1 − ρ)·g²; a = ρ·a + (1 − ρ)·g; Δ = lr·g / √(v − a² + ε) (v + ε uncentered);
/// m = μ·m + Δ, out = w − m (w − Δ without momentum)
public func rmspropUpdate(_ n: Int, out: UnsafeMutablePointer<Float>, w: UnsafePointer<Float>, g: UnsafePointer<Float>,
                          velocity: UnsafeMutablePointer<Float>, momentum m: UnsafeMutablePointer<Float>?,
                          average: UnsafeMutablePointer<Float>?, learningRate lr: Float, rho: Float, momentum: Float,
                          epsilon: Float) {
    for i in 0..<n {
        let v = rho * velocity[i] + (1 - rho) * (g[i] * g[i])
        velocity[i] = v
        var denominator = v + epsilon
        if let average {
            let a = rho * average[i] + (1 - rho) * g[i]
            average[i] = a
            denominator = v - a * a + epsilon
        }
        let increment = (lr * g[i]) / denominator.squareRoot()
        if let m {
            m[i] = momentum * m[i] + increment
            out[i] = w[i] - m[i]
        } else {
            out[i] = w[i] - increment
        }
    }
}

/// m = m + (g − m)(1 − β₁); v = v + (g² − v)(1 − β₂); with AMSGrad v̂ = max(v̂, v) in place of v;
/// out = w − α·m / (√v + ε), where α = lr·√(1 − β₂ᵗ) / (1 − β₁ᵗ) is the caller's
public func adamUpdate(_ n: Int, out: UnsafeMutablePointer<Float>, w: UnsafePointer<Float>, g: UnsafePointer<Float>,
                       m: UnsafeMutablePointer<Float>, v: UnsafeMutablePointer<Float>, vHat: UnsafeMutablePointer<Float>?,
                       alpha: Float, beta1: Float, beta2: Float, epsilon: Float) {
    guard let vHat else {
        let vector = n & ~7
        for i in stride(from: 0, to: vector, by: 8) {
            let gi = load(g + i), m0 = load(m + i), v0 = load(v + i)
            let mi = m0 + (gi - m0) * (1 - beta1)
            let vi = v0 + (gi * gi - v0) * (1 - beta2)
            store(mi, m + i)
            store(vi, v + i)
            store(load(w + i) - (mi * alpha) / (loom_sqrt8(vi) + epsilon), out + i)
        }
        for i in vector..<n {
            let mi = m[i] + (g[i] - m[i]) * (1 - beta1)
            let vi = v[i] + (g[i] * g[i] - v[i]) * (1 - beta2)
            m[i] = mi
            v[i] = vi
            out[i] = w[i] - (mi * alpha) / (vi.squareRoot() + epsilon)
        }
        return
    }
    for i in 0..<n {
        let mi = m[i] + (g[i] - m[i]) * (1 - beta1)
        let vi = v[i] + (g[i] * g[i] - v[i]) * (1 - beta2)
        m[i] = mi
        v[i] = vi
        let vh = Swift.max(vHat[i], vi)
        vHat[i] = vh
        out[i] = w[i] - (mi * alpha) / (vh.squareRoot() + epsilon)
    }
}

/// s = s + g²; out = w − lr·g / √(s + ε)
public func adagradUpdate(_ n: Int, out: UnsafeMutablePointer<Float>, w: UnsafePointer<Float>, g: UnsafePointer<Float>,
                          accumulator: UnsafeMutablePointer<Float>, learningRate lr: Float, epsilon: Float) {
    for i in 0..<n {
        accumulator[i] += g[i] * g[i]
        out[i] = w[i] - (lr * g[i]) / (accumulator[i] + epsilon).squareRoot()
    }
}

/// a = ρ·a + (1 − ρ)·g²; Δ = −√(d + ε)·g / √(a + ε); d = ρ·d + (1 − ρ)·Δ²; out = w + lr·Δ
public func adadeltaUpdate(_ n: Int, out: UnsafeMutablePointer<Float>, w: UnsafePointer<Float>, g: UnsafePointer<Float>,
                           accumulatedGradient a: UnsafeMutablePointer<Float>,
                           accumulatedDelta d: UnsafeMutablePointer<Float>, learningRate lr: Float, rho: Float,
                           epsilon: Float) {
    for i in 0..<n {
        let ai = rho * a[i] + (1 - rho) * (g[i] * g[i])
        a[i] = ai
        let delta = -((d[i] + epsilon).squareRoot() * g[i]) / (ai + epsilon).squareRoot()
        d[i] = rho * d[i] + (1 - rho) * (delta * delta)
        out[i] = w[i] + lr * delta
    }
}

/// m = m + (g − m)(1 − β₁); u = max(β₂·u, |g|); out = w − lr·m / ((1 − β₁ᵗ)(u + ε))
public func adamaxUpdate(_ n: Int, out: UnsafeMutablePointer<Float>, w: UnsafePointer<Float>, g: UnsafePointer<Float>,
                         m: UnsafeMutablePointer<Float>, u: UnsafeMutablePointer<Float>, learningRate lr: Float,
                         beta1: Float, beta2: Float, beta1Power: Float, epsilon: Float) {
    for i in 0..<n {
        let mi = m[i] + (g[i] - m[i]) * (1 - beta1)
        let ui = Swift.max(beta2 * u[i], Swift.abs(g[i]))
        m[i] = mi
        u[i] = ui
        out[i] = w[i] - (lr * mi) / ((1 - beta1Power) * (ui + epsilon))
    }
}

/// Nadam with Keras's momentum schedule uₜ (the caller's, with Πuₜ and Πuₜ₊₁):
/// m and v as Adam's; m̂ = uₜ₊₁·m / (1 − Πuₜ₊₁) + (1 − uₜ)·g / (1 − Πuₜ); v̂ = v / (1 − β₂ᵗ);
/// out = w − lr·m̂ / (√v̂ + ε)
public func nadamUpdate(_ n: Int, out: UnsafeMutablePointer<Float>, w: UnsafePointer<Float>, g: UnsafePointer<Float>,
                        m: UnsafeMutablePointer<Float>, v: UnsafeMutablePointer<Float>, learningRate lr: Float,
                        beta1: Float, beta2: Float, epsilon: Float,
                        schedule: (u: Float, uNext: Float, product: Float, productNext: Float, beta2Power: Float)) {
    let (ut, ut1, uProduct, uProductNext, beta2Power) = schedule
    for i in 0..<n {
        let mi = m[i] + (g[i] - m[i]) * (1 - beta1)
        let vi = v[i] + (g[i] * g[i] - v[i]) * (1 - beta2)
        m[i] = mi
        v[i] = vi
        let mHat = (ut1 * mi) / (1 - uProductNext) + ((1 - ut) * g[i]) / (1 - uProduct)
        let vHat = vi / (1 - beta2Power)
        out[i] = w[i] - (mHat * lr) / (vHat.squareRoot() + epsilon)
    }
}

/// The index of the first element that is not finite, or nil.
public func firstNonFinite(_ buffer: UnsafeBufferPointer<Float>) -> Int? {
    guard let p = buffer.baseAddress else { return nil }
    // x · 0 is zero for finite x and NaN otherwise, so a block's sum of them is zero exactly
    // when the block is finite: eight lanes at a time, and a scan only of a block that is not.
    let block = 4096
    for start in stride(from: 0, to: buffer.count, by: block) {
        let end = Swift.min(start + block, buffer.count)
        var acc = Vec()
        var i = start
        while i + 8 <= end {
            acc += load(p + i) * 0
            i += 8
        }
        var rest: Float = 0
        while i < end {
            rest += p[i] * 0
            i += 1
        }
        if acc.sum() + rest != 0 { return (start..<end).first { !p[$0].isFinite } }
    }
    return nil
}
