import { describe, expect, it } from 'vitest';
import { chooseBackend, effectivePreference, parseBackendOverrides } from './backendPreference';

describe('backend preference', () => {
  it('parses ?backend= and ?backend.<id>=, ignoring unknown values', () => {
    expect(parseBackendOverrides('?backend=wasm&backend.tiny-cnn=WebGPU&backend.x=cuda&debug=1')).toEqual({
      all: 'wasm',
      perModel: { 'tiny-cnn': 'webgpu' },
    });
    expect(parseBackendOverrides('')).toEqual({ perModel: {} });
  });

  it('per-model URL > global URL > saved setting > auto', () => {
    const url = parseBackendOverrides('?backend=wasm&backend.a=webgpu');
    expect(effectivePreference('a', url, { a: 'wasm' })).toBe('webgpu');
    expect(effectivePreference('b', url, { b: 'webgpu' })).toBe('wasm');
    expect(effectivePreference('b', { perModel: {} }, { b: 'webgpu' })).toBe('webgpu');
    expect(effectivePreference('c', { perModel: {} }, {})).toBe('auto');
  });

  it('auto uses WebGPU only on a real (non-fallback) adapter; explicit choices are kept', () => {
    const none = { available: false, fallback: false, description: '' };
    const swiftshader = { available: true, fallback: true, description: 'google swiftshader' };
    const gpu = { available: true, fallback: false, description: 'nvidia ampere' };
    expect(chooseBackend('auto', none).backend).toBe('wasm');
    expect(chooseBackend('auto', swiftshader).backend).toBe('wasm');
    expect(chooseBackend('auto', gpu).backend).toBe('webgpu');
    expect(chooseBackend('webgpu', none).backend).toBe('webgpu');
    expect(chooseBackend('wasm', gpu).backend).toBe('wasm');
  });
});
