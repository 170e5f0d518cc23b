/** Files from a drop event, descending into dropped folders. */
export async function filesFromDataTransfer(transfer: DataTransfer): Promise<File[]> {
  const entries = Array.from(transfer.items ?? [])
    .map((item) => (item.kind === 'file' ? item.webkitGetAsEntry?.() : null))
    .filter((e): e is FileSystemEntry => !!e);
  if (entries.length === 0) return Array.from(transfer.files ?? []);
  const files: File[] = [];
  for (const entry of entries) files.push(...(await filesOfEntry(entry)));
  return files;
}

async function filesOfEntry(entry: FileSystemEntry): Promise<File[]> {
  if (entry.isFile) {
    return [await new Promise<File>((resolve, reject) => (entry as FileSystemFileEntry).file(resolve, reject))];
  }
  if (!entry.isDirectory) return [];
  const reader = (entry as FileSystemDirectoryEntry).createReader();
  const children: FileSystemEntry[] = [];
  // readEntries returns batches until an empty one.
  for (;;) {
    const batch = await new Promise<FileSystemEntry[]>((resolve, reject) => reader.readEntries(resolve, reject));
    if (batch.length === 0) break;
    children.push(...batch);
  }
  children.sort((a, b) => a.name.localeCompare(b.name));
  const files: File[] = [];
  for (const child of children) files.push(...(await filesOfEntry(child)));
  // Inside folders, skip sidecars and hidden files silently; files dropped by name are all tried.
  return files.filter(isLoadableCandidate);
}

/** Hidden files and sidecars (.aux.xml, .ovr, world files) are not images to load. */
export function isLoadableCandidate(file: File): boolean {
  return !file.name.startsWith('.') && !/\.(aux\.xml|ovr|tfw|jgw|pgw|wld|prj|xml|json|txt|md)$/i.test(file.name);
}
