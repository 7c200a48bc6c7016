/** The console's job list in localStorage, so it survives a reload; the master holds the truth. */
const STORAGE_KEY = 'dips.jobs';
const MAX_REMEMBERED_JOBS = 50;

/** Entries: { id, submittedAt, pipeline (data URLs shortened), preset?, options?, format, names }. Newest first. */
export function loadJobs() {
  try {
    const entries = JSON.parse(localStorage.getItem(STORAGE_KEY) ?? '[]');
    return Array.isArray(entries) ? entries.filter((entry) => typeof entry?.id === 'string') : [];
  } catch {
    return [];
  }
}

function save(entries) {
  localStorage.setItem(STORAGE_KEY, JSON.stringify(entries.slice(0, MAX_REMEMBERED_JOBS)));
}

export function rememberJob(entry) {
  save([entry, ...loadJobs().filter((existing) => existing.id !== entry.id)]);
}

export function forgetJob(id) {
  save(loadJobs().filter((entry) => entry.id !== id));
}
