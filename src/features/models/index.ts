export { ModelsPanel } from './ModelsPanel';
export { BackendBadge, ModelsStatusBadge } from './BackendBadge';
export { useModelsStore } from './modelsStore';
