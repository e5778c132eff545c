//! The one-node test cluster itself (`vov_tests::slurm`): an array job with a
//! throttle and one stand-in GPU per task runs to the end, and every task sees
//! one of the two GPUs in `CUDA_VISIBLE_DEVICES`.

use std::time::Duration;

use vov_tests::slurm::cluster;

#[test]
fn array_of_gpu_tasks_runs_to_the_end() {
    let c = cluster();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("%A_%a.out");
    let job = c.sbatch(&[
        "--array=0-3%2",
        "--gres=gpu:1",
        "--job-name=vov-smoke",
        "-D",
        dir.path().to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--wrap",
        "echo $CUDA_VISIBLE_DEVICES",
    ]);
    let rows = c.wait_job(job, Duration::from_secs(60));
    let mut ids: Vec<&str> = rows.iter().map(|(id, _, _)| id.as_str()).collect();
    ids.sort();
    let want: Vec<String> = (0..4).map(|t| format!("{job}_{t}")).collect();
    assert_eq!(ids, want, "{rows:?}");
    for (id, state, reason) in &rows {
        assert_eq!(state, "COMPLETED", "{id}: {state} {reason}");
    }
    for task in 0..4 {
        let file = dir.path().join(format!("{job}_{task}.out"));
        let text =
            std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        assert!(
            matches!(text.trim(), "0" | "1"),
            "task {task} saw CUDA_VISIBLE_DEVICES={text:?}"
        );
    }
}
