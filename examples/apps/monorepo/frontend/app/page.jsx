export default function Home() {
  return <h1>Monorepo frontend</h1>;
}
