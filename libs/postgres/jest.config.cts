module.exports = {
  displayName: 'postgres',
  preset: '../../jest.preset.js',
  testEnvironment: 'node',
  coverageDirectory: '../../coverage/libs/postgres',
};
