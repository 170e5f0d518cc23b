import { useRef } from 'react';
import { useLayersStore, type LoadedImage } from './layersStore';
import { ingestFiles, removeLoadedImage } from './ingest';
import { isLoadableCandidate } from './fileDrop';
import type { MapController } from '../../map/mapController';

function crsLabel(image: LoadedImage): string {
  const geo = image.info.geo;
  if (!geo) return 'pixel coordinates';
  return geo.epsg !== null ? `EPSG:${geo.epsg}` : 'custom CRS (no EPSG code)';
}

function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / 1024 ** 2).toFixed(1)} MB`;
}

function LayerRow({ image, controller }: { image: LoadedImage; controller: MapController }) {
  const setVisible = useLayersStore((s) => s.setVisible);
  const select = useLayersStore((s) => s.select);
  const selected = useLayersStore((s) => s.selectedId === image.id);
  const { info } = image;
  const extent = controller.extentLonLat(image.id);
  return (
    <li
      className={`layer-row${selected ? ' selected' : ''}`}
      data-testid="layer-row"
      data-name={image.name}
      data-extent-lonlat={extent ? JSON.stringify(extent) : undefined}
      onClick={() => select(image.id)}
    >
      <input
        type="checkbox"
        checked={image.visible}
        aria-label={`Show ${image.name}`}
        onChange={(e) => {
          setVisible(image.id, e.target.checked);
          controller.setVisible(image.id, e.target.checked);
        }}
      />
      <div className="layer-text">
        <div className="layer-name" title={image.name}>
          {image.name}
        </div>
        <div className="layer-meta">
          {info.width}×{info.height} px · {info.bandCount} band{info.bandCount > 1 ? 's' : ''} {info.sampleKind}
          {info.pixelSizeMetres !== null && ` · ${info.pixelSizeMetres < 10 ? info.pixelSizeMetres.toFixed(2) : info.pixelSizeMetres.toFixed(0)} m/px`}
        </div>
        <div className="layer-meta">
          <span data-testid="layer-crs">{crsLabel(image)}</span> · {formatBytes(image.byteSize)}
        </div>
        {info.geoNote && <div className="layer-note">{info.geoNote}</div>}
      </div>
      <button title="Zoom to layer" aria-label={`Zoom to ${image.name}`} onClick={() => controller.zoomTo(image.id)}>
        ⤢
      </button>
      <button title="Remove layer" aria-label={`Remove ${image.name}`} onClick={() => removeLoadedImage(image.id, controller)}>
        ✕
      </button>
    </li>
  );
}

export function LayersPanel({ controller }: { controller: MapController }) {
  const images = useLayersStore((s) => s.images);
  const pending = useLayersStore((s) => s.pending);
  const problems = useLayersStore((s) => s.problems);
  const dismissProblem = useLayersStore((s) => s.dismissProblem);
  const fileInput = useRef<HTMLInputElement>(null);
  const folderInput = useRef<HTMLInputElement>(null);

  const onPicked = (input: HTMLInputElement, fromFolder: boolean) => {
    const files = Array.from(input.files ?? []);
    input.value = '';
    void ingestFiles(fromFolder ? files.filter(isLoadableCandidate) : files, controller);
  };

  return (
    <div className="layers-panel">
      <div className="button-row">
        <button onClick={() => fileInput.current?.click()}>Open files…</button>
        <button onClick={() => folderInput.current?.click()}>Open folder…</button>
        <input ref={fileInput} data-testid="file-input" type="file" multiple hidden onChange={(e) => onPicked(e.currentTarget, false)} />
        <input
          ref={folderInput}
          type="file"
          hidden
          {...({ webkitdirectory: '', directory: '' } as Record<string, string>)}
          onChange={(e) => onPicked(e.currentTarget, true)}
        />
      </div>
      <p className="hint">Drop JPEG, PNG or GeoTIFF/COG files (or folders) anywhere on the page.</p>

      {problems.length > 0 && (
        <ul className="problems" aria-label="Load problems">
          {problems.map((p) => (
            <li key={p.id} role="alert" data-testid="load-problem">
              <strong>{p.fileName}</strong>: {p.message}
              <button aria-label={`Dismiss message about ${p.fileName}`} onClick={() => dismissProblem(p.id)}>
                ✕
              </button>
            </li>
          ))}
        </ul>
      )}

      {pending.length > 0 && (
        <ul className="pending" aria-label="Loading">
          {pending.map((p) => (
            <li key={p.id}>Loading {p.name}…</li>
          ))}
        </ul>
      )}

      <h3>Layers ({images.length})</h3>
      {images.length === 0 && <p className="hint">No images loaded yet.</p>}
      <ul className="layer-list" aria-label="Layers">
        {[...images].reverse().map((image) => (
          <LayerRow key={image.id} image={image} controller={controller} />
        ))}
      </ul>

      {images.length > 0 && (
        <>
          <h3>Gallery</h3>
          <div className="gallery" aria-label="Gallery">
            {images.map((image) =>
              image.thumbnailUrl ? (
                <img
                  key={image.id}
                  src={image.thumbnailUrl}
                  alt={image.name}
                  title={image.name}
                  data-testid="thumbnail"
                  onClick={() => controller.zoomTo(image.id)}
                />
              ) : null,
            )}
          </div>
        </>
      )}
    </div>
  );
}
