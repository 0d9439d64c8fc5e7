// The Flywheel UI: a login screen that takes a token, then five areas — runs, models, datasets, monitors, pipelines.
import { StrictMode, useEffect, useState, type FormEvent } from 'react';
import { createRoot } from 'react-dom/client';
import { ApiFailure, getToken, request, setToken } from './api';
import { ErrorBox } from './components/common';
import { DatasetDiffPage, DatasetPage, DatasetsPage, DatasetVersionPage } from './pages/Datasets';
import { ModelPage, ModelsPage, VersionPage } from './pages/Models';
import { MonitorPage, MonitorsPage } from './pages/Monitors';
import { PipelinePage, PipelinesPage } from './pages/Pipelines';
import { ComparePage, RunPage, RunsPage } from './pages/Runs';
import { href, useRoute, type Route } from './router';
import './styles.css';

function Login() {
  const [draft, setDraft] = useState('');
  const [error, setError] = useState<string>();
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setError(undefined);
    const token = draft.trim();
    try {
      await request('/api/v1/experiments?limit=1', {}, token);
      setToken(token);
    } catch (failure) {
      // A valid token without `read` (an `infer` token) may still sign in: each page shows what the server refuses.
      if (failure instanceof ApiFailure && failure.status === 403) setToken(token);
      else setError((failure as Error).message);
    }
  };
  return (
    <form className="login card" onSubmit={submit}>
      <h2>Flywheel</h2>
      <p className="muted">
        Sign in with a Flywheel API token (<code>flywheel tokens create me --scope read</code>). It is kept in this tab
        only (sessionStorage).
      </p>
      <input
        name="token"
        type="password"
        autoComplete="off"
        placeholder="fw_…"
        value={draft}
        onChange={(e) => setDraft(e.target.value)}
        autoFocus
      />
      <button type="submit">Sign in</button>
      <ErrorBox error={error} />
    </form>
  );
}

const AREAS = [
  ['runs', 'Runs'],
  ['models', 'Models'],
  ['datasets', 'Datasets'],
  ['monitors', 'Monitors'],
  ['pipelines', 'Pipelines'],
] as const;

function Page({ route }: { route: Route }) {
  const [area = 'runs', a, b] = route.parts;
  switch (area) {
    case 'runs':
      return a ? <RunPage id={a} /> : <RunsPage route={route} />;
    case 'compare':
      return <ComparePage route={route} />;
    case 'models':
      return b ? <VersionPage name={a!} version={Number(b)} /> : a ? <ModelPage name={a} /> : <ModelsPage />;
    case 'datasets':
      return a ? a.includes('@') ? <DatasetVersionPage reference={a} /> : <DatasetPage name={a} /> : <DatasetsPage />;
    case 'datasets-diff':
      return <DatasetDiffPage route={route} />;
    case 'monitors':
      return a ? <MonitorPage model={a} /> : <MonitorsPage route={route} />;
    case 'pipelines':
      return a ? <PipelinePage id={a} /> : <PipelinesPage />;
    default:
      return <ErrorBox error={`no page "${area}"`} />;
  }
}

function App() {
  const [token, setTokenState] = useState(getToken);
  const route = useRoute();
  useEffect(() => {
    const update = () => setTokenState(getToken());
    window.addEventListener('flywheel:token', update);
    return () => window.removeEventListener('flywheel:token', update);
  }, []);
  if (!token) return <Login />;
  const area = route.parts[0] ?? 'runs';
  return (
    <div className="shell">
      <nav>
        <a className="brand" href={href(['runs'])}>
          Flywheel
        </a>
        {AREAS.map(([key, title]) => (
          <a
            key={key}
            href={href([key])}
            className={area === key || (key === 'runs' && area === 'compare') ? 'active' : ''}
          >
            {title}
          </a>
        ))}
        <span className="grow" />
        <a href="/openapi.json" target="_blank" rel="noreferrer">
          API
        </a>
        <button className="link" onClick={() => setToken(null)}>
          Sign out
        </button>
      </nav>
      <main key={route.parts.join('/')}>
        <Page route={route} />
      </main>
    </div>
  );
}

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <App />
  </StrictMode>,
);
